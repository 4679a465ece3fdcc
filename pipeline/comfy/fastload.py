"""Read a safetensors file straight onto a CUDA device with parallel reads.

``safetensors.torch.load_file`` reads the file through one memory map and
copies tensor by tensor: from a cold page cache that is one reader's
readahead, about 1.3 GB/s on the device machine's disk (6.9 GB of SDXL
weights in 5.6-6.7 s).  Cold-start time is what the simulator's warm pool
pays for, so this reader splits the file into chunks, reads them with
several threads (``os.preadv`` releases the GIL), by default with ``O_DIRECT``
(no page-cache copy), into pinned host buffers and copies each to one device
buffer on a per-thread CUDA stream, two buffers per thread so a read overlaps
the previous copy.  Each tensor is then a copy out of the device buffer
(device-to-device, milliseconds), so the big buffer is freed and no tensor
aliases another.  :class:`ReadOptions` sets threads, chunk size and
``O_DIRECT``; ``comfyfab bench load`` compares them on a given disk.

The format is safetensors' own (an 8-byte little-endian header length, a
JSON header of ``dtype``/``shape``/``data_offsets`` per tensor, then the
data), read here without a private API of the library.  On a CPU device the
library's loader is used as before.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["ReadOptions", "read_safetensors"]

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _header(path: Path) -> tuple[dict, int, int]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path.name}: not a safetensors file (shorter than its header length)")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8:
            raise ValueError(f"{path.name}: header length {n} exceeds the file size {size}")
        header = json.loads(fh.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n, size - 8 - n


@dataclass(frozen=True)
class ReadOptions:
    """How :func:`read_safetensors` reads a file onto a CUDA device.

    ``workers`` threads each read ``chunk_mb`` MB at a time; ``direct`` opens the
    file with ``O_DIRECT`` (Linux), so reads go from the disk into the pinned
    buffers without a pass through the page cache (a filesystem that refuses it,
    tmpfs for one, is read buffered and the result says so).

    The defaults are the fastest of six readers that ``comfyfab bench load`` compared on
    the H100 machine's local disk (``profiles/h100-sdxl-bf16-loadbench.csv``): SDXL's
    6.9 GB cold in 4.58 s median with 16 x 8 MB O_DIRECT, against 4.98 s with the
    earlier 8 x 32 MB buffered reads.  Another disk may prefer others: measure it.
    ``O_DIRECT`` also ignores a warm page cache: a file another process has just read
    comes from the disk again, where buffered reads would copy it from memory.  A host
    that reloads the same checkpoint often (worker restarts on one machine) may want
    ``direct=False``; a freshly started GPU machine, the cold start the simulator models,
    has nothing cached."""

    workers: int = 16
    chunk_mb: float = 8
    direct: bool = True
    parallel: bool | None = None  # None: the threaded reader on CUDA, safetensors' loader elsewhere

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if not self.chunk_mb > 0:
            raise ValueError(f"chunk_mb must be positive, not {self.chunk_mb}")

    @property
    def chunk_bytes(self) -> int:
        return max(1, int(self.chunk_mb * (1 << 20)))

    @property
    def name(self) -> str:
        """The reader in :meth:`parse`'s notation."""
        if self.parallel is False:
            return "library"
        return f"{self.workers}x{self.chunk_mb:g}" + ("d" if self.direct else "")

    @classmethod
    def parse(cls, text: str) -> "ReadOptions":
        """``THREADSxMB`` with a trailing ``d`` for O_DIRECT (``8x32``, ``16x64d``), or ``library``
        for safetensors' own loader; raises ValueError on anything else."""
        text = text.strip().lower()
        if text == "library":
            return cls(parallel=False)
        direct = text.endswith("d")
        threads, sep, mb = text.removesuffix("d").partition("x")
        try:
            if not sep:
                raise ValueError
            return cls(workers=int(threads), chunk_mb=float(mb), direct=direct, parallel=True)
        except ValueError:
            raise ValueError(f"{text!r} is not a reader: THREADSxMB, with d for O_DIRECT (8x32, 16x64d), "
                             f"or library") from None


_ALIGN = 4096  # O_DIRECT: file offset, length and memory address on this boundary


def _open(path: Path, direct: bool) -> tuple[int, bool]:
    if direct and hasattr(os, "O_DIRECT"):
        try:
            return os.open(path, os.O_RDONLY | os.O_DIRECT), True
        except OSError:  # the filesystem refuses it: read through the page cache
            pass
    return os.open(path, os.O_RDONLY), False


def _host_buffer(nbytes: int, pinned: bool, align: int) -> torch.Tensor:
    raw = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
    if raw.data_ptr() % align == 0:  # pinned blocks start on a page: no padding (the pinning costs time)
        return raw
    raw = torch.empty(nbytes + align, dtype=torch.uint8, pin_memory=pinned)
    shift = (-raw.data_ptr()) % align
    return raw[shift:shift + nbytes]


def read_safetensors(path: Path | str, device: torch.device | str, options: ReadOptions | None = None,
                     phases: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of ``path`` on ``device``.  The threaded chunked reader runs where
    ``options.parallel`` says (default: on CUDA only); otherwise safetensors' own loader.
    ``phases``, when given, receives the seconds spent pinning host buffers (the slowest
    thread), reading and copying, and splitting the buffer into tensors, and how the file
    was opened."""
    path, device = Path(path), torch.device(device)
    opts = options or ReadOptions()
    if not (device.type == "cuda" if opts.parallel is None else opts.parallel):
        from safetensors.torch import load_file

        t0 = time.perf_counter()
        out = load_file(str(path), device=str(device))
        if phases is not None:
            phases.update(read_s=time.perf_counter() - t0, reader="safetensors.load_file")
        return out
    cuda = device.type == "cuda"
    header, base, data_bytes = _header(path)
    fd, direct = _open(path, opts.direct)
    align = _ALIGN if direct else 1
    chunk = -(-opts.chunk_bytes // align) * align
    file_bytes = base + data_bytes
    # the whole file goes to one device buffer (direct reads start at offset 0, aligned);
    # the tensor data is the part after the header
    whole = torch.empty(-(-file_bytes // align) * align, dtype=torch.uint8, device=device)
    chunks = [(off, min(chunk, file_bytes - off)) for off in range(0, file_bytes, chunk)]
    workers = max(1, min(opts.workers, len(chunks)))
    errors: list[BaseException] = []
    pin_s = [0.0] * workers

    def reader(index: int) -> None:
        try:
            t_pin = time.perf_counter()
            stream = torch.cuda.Stream(device=device) if cuda else None
            host = [_host_buffer(chunk, cuda, align) for _ in range(2)]
            views = [memoryview(h.numpy()) for h in host]
            pin_s[index] = time.perf_counter() - t_pin
            done = [None, None]
            for k, (off, length) in enumerate(chunks[index::workers]):
                slot = k % 2
                if done[slot] is not None:
                    done[slot].synchronize()  # the copy out of this host buffer has finished
                want = -(-length // align) * align  # direct reads ask whole blocks; EOF cuts them short
                got = 0
                while got < length:
                    n = os.preadv(fd, [views[slot][got:want]], off + got)
                    if n <= 0:
                        raise OSError(f"{path.name}: short read at byte {off + got}")
                    got += n
                if stream is None:  # a host buffer: the copy is done when it returns
                    whole[off:off + length].copy_(host[slot][:length])
                    continue
                with torch.cuda.stream(stream):
                    whole[off:off + length].copy_(host[slot][:length], non_blocking=True)
                    done[slot] = torch.cuda.Event()
                    done[slot].record(stream)
            if stream is not None:
                stream.synchronize()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(workers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.close(fd)
    if errors:
        raise errors[0]
    t1 = time.perf_counter()
    buf = whole[base:file_bytes]
    out: dict[str, torch.Tensor] = {}
    for key, info in header.items():
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path.name}: tensor {key} has an unsupported dtype {info['dtype']!r}")
        start, end = info["data_offsets"]
        out[key] = buf[start:end].clone().view(dtype).view(info["shape"])
    if phases is not None:
        if cuda:
            torch.cuda.synchronize(device)
        phases.update(pin_s=max(pin_s), read_s=t1 - t0, split_s=time.perf_counter() - t1,
                      reader=f"{workers} threads x {chunk / (1 << 20):g} MB chunks, "
                             f"{'O_DIRECT' if direct else 'buffered'}")
    return out
