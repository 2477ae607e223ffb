"""Data-quality profile of a table: per column completeness and uniqueness."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class ColumnProfile:
    column: str
    completeness: float  # share of rows with a value
    uniqueness: float  # distinct values / rows with a value
    distinct: int
    example: str | None  # most frequent value, for a person to recognise the column

    def as_dict(self) -> dict:
        return asdict(self)


def profile_columns(frame: pd.DataFrame) -> list[ColumnProfile]:
    profiles = []
    rows = len(frame)
    for column in frame.columns:
        values = frame[column].astype("string").str.strip().replace("", pd.NA).dropna()
        distinct = int(values.nunique())
        top = values.value_counts().index[0] if len(values) else None
        profiles.append(ColumnProfile(
            column=column,
            completeness=len(values) / rows if rows else 0.0,
            uniqueness=distinct / len(values) if len(values) else 0.0,
            distinct=distinct,
            example=top,
        ))
    return profiles
