"""Reading channel extracts (CSV, JSONL, Parquet) as text columns."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

READABLE_SUFFIXES = (".csv", ".jsonl", ".parquet")


class InputFileError(ValueError):
    """A file could not be read; the message names the file and what to do."""


def read_table(path: Path) -> pd.DataFrame:
    """All columns as pandas string dtype, missing values as <NA>; row order preserved."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
        elif suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False, convert_dates=False)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise InputFileError(f"{path}: unsupported file type {suffix!r}; use one of {READABLE_SUFFIXES}.")
    except InputFileError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise InputFileError(f"{path}: could not be read as {suffix[1:].upper()}: {error}") from error
    return frame.astype("string")
