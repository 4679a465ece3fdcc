"""Write the notebooks from their cell sources, and run them with injected parameters.

The notebooks are generated, not edited: their cells live in
``cells_capacity.py`` and ``cells_autoscaler.py`` beside this file, so a
change is reviewed as Python, and the ``.ipynb`` files are committed without
outputs.  Each notebook has one code cell tagged ``parameters``; running
with parameters adds a cell after it tagged ``injected-parameters`` that
assigns the new values (the papermill convention), so the notebook reads
the same with or without them.

    python notebooks/build.py                  # (re)write the .ipynb files
    python notebooks/build.py --check          # fail if they differ from the cell sources
    python notebooks/build.py --run SMALL=True FIG_DIR=/tmp/figs   # execute both, with outputs in --out
"""

from __future__ import annotations

import argparse
import ast
import runpy
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

import nbformat
from nbformat import NotebookNode

HERE = Path(__file__).resolve().parent
SOURCES = {"capacity_planning.ipynb": "cells_capacity.py", "autoscaler_tuning.ipynb": "cells_autoscaler.py"}
KERNEL_NAME = "comfyfab-python"
KERNEL_SPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


class NotebookBuildError(Exception):
    """A cell source list that cannot make a notebook (no or several parameter cells, an unknown kind)."""


def notebook(name: str) -> NotebookNode:
    """The notebook ``name`` (a key of ``SOURCES``), without outputs, with stable cell ids."""
    cells = runpy.run_path(str(HERE / SOURCES[name]))["CELLS"]
    stem = name.removesuffix(".ipynb")
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": KERNEL_SPEC,
                                            "language_info": {"name": "python"}})
    kinds = [kind for kind, _ in cells]
    if kinds.count("parameters") != 1:
        raise NotebookBuildError(f"{name}: needs exactly one parameters cell, has {kinds.count('parameters')}")
    for i, (kind, source) in enumerate(cells):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        elif kind in ("code", "parameters"):
            cell = nbformat.v4.new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
        else:
            raise NotebookBuildError(f"{name}: cell {i} has unknown kind {kind!r}")
        cell.id = f"{stem}-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def build(directory: Path = HERE) -> list[Path]:
    """Write every notebook into ``directory``; returns their paths."""
    paths = []
    for name in SOURCES:
        path = Path(directory) / name
        nbformat.write(notebook(name), path)
        paths.append(path)
    return paths


def stale(directory: Path = HERE) -> list[str]:
    """Names of notebooks in ``directory`` that are missing or differ from their cell sources."""
    out = []
    for name in SOURCES:
        path = Path(directory) / name
        if not path.exists() or nbformat.read(path, as_version=4) != notebook(name):
            out.append(name)
    return out


def inject(nb: NotebookNode, params: Mapping[str, Any]) -> NotebookNode:
    """A copy of ``nb`` with a cell assigning ``params`` right after the ``parameters`` cell."""
    nb = nbformat.from_dict(nb)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    declared = _assigned(nb.cells[at].source)
    unknown = set(params) - declared
    if unknown:
        raise NotebookBuildError(f"not parameters of this notebook: {', '.join(sorted(unknown))}; "
                                 f"it declares {', '.join(sorted(declared))}")
    cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    cell.id = "injected-parameters"
    nb.cells.insert(at + 1, cell)
    return nb


def _assigned(source: str) -> set[str]:
    return {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def execute(name: str, params: Mapping[str, Any], *, cwd: Path, timeout_s: float = 600) -> NotebookNode:
    """Run notebook ``name`` with ``params`` injected, in ``cwd``, on this interpreter's ipykernel.

    The kernel spec is written afresh for ``sys.executable``, so the kernel
    is this virtual environment's Python whatever kernels are installed.
    """
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = inject(notebook(name), params)
    with tempfile.TemporaryDirectory(prefix="comfyfab-kernels-") as kernels:
        write_kernel_spec(Path(kernels) / KERNEL_NAME)
        km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]))
        client = NotebookClient(nb, km=km, timeout=timeout_s, resources={"metadata": {"path": str(cwd)}})
        client.execute()
    return nb


def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return key.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a notebook differs from its cell sources")
    ap.add_argument("--run", nargs="*", type=_param, metavar="NAME=VALUE", default=None,
                    help="execute both notebooks with these parameters")
    ap.add_argument("--out", type=Path, default=Path("runs/notebooks"), help="where executed notebooks go")
    args = ap.parse_args(argv)
    if args.check:
        names = stale()
        for n in names:
            print(f"{n} differs from {SOURCES[n]}: run python notebooks/build.py", file=sys.stderr)
        return 1 if names else 0
    if args.run is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in SOURCES:
            nb = execute(name, dict(args.run), cwd=HERE)  # where Jupyter would run it
            nbformat.write(nb, args.out / name)
            print(f"ran {name} -> {args.out / name}")
        return 0
    for path in build():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
