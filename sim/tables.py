"""Reading the simulator's input tables (traces, measured profiles) from CSV or Parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import SimError

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: str | Path, what: str, error: type[SimError]) -> tuple[Path, pd.DataFrame]:
    """``(path, frame)`` of a CSV or Parquet file; any failure is ``error`` naming ``what`` and the path."""
    p = Path(path)
    try:
        return p, pd.read_parquet(p) if p.suffix in PARQUET_SUFFIXES else pd.read_csv(p)
    except FileNotFoundError:
        raise error(f"{what} not found: {p}") from None
    except ImportError as exc:
        raise error(f"cannot read Parquet {what} {p}: {exc}") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise error(f"{what} {p} is unreadable: {exc}") from None
