"""Data-quality measures of one column of raw values, shared by the generator's data
profile and resolution's ``profile.json``."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Consistency is measured on the first values of a column; formats settle quickly.
SHAPE_SAMPLE = 20_000


@dataclass(frozen=True)
class ColumnProfile:
    column: str
    completeness: float  # share of rows with a value
    uniqueness: float  # distinct values / rows with a value
    distinct: int
    consistency: float | None  # share of values in the most common shape ("AA9A 9AA")
    example: str | None  # most frequent value, for a person to recognise the column

    def as_dict(self) -> dict:
        return asdict(self)


def shapes(values: pa.Array) -> pa.Array:
    """"SW1A 1AA" -> "AA9A 9AA": the format of each value."""
    digits = pc.replace_substring_regex(values, pattern=r"\p{N}", replacement="9")
    return pc.replace_substring_regex(digits, pattern=r"\p{L}", replacement="A")


def present_values(values) -> pa.Array:
    """Text values with blanks as missing."""
    array = pa.array(pd.Series(values, dtype="string"), type=pa.string(), from_pandas=True) \
        if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.string())
    return pc.if_else(pc.equal(pc.utf8_trim_whitespace(array), ""), pa.scalar(None, pa.string()), array)


def profile_column(name: str, values) -> ColumnProfile:
    return profile_present(name, present_values(values))


def profile_present(name: str, array: pa.Array) -> ColumnProfile:
    """``profile_column`` of values already through ``present_values``."""
    rows = len(array)
    present = array.drop_null()
    counts = pc.value_counts(present)
    distinct = len(counts)
    example = None
    if len(counts):
        top = pc.index(counts.field("counts"), pc.max(counts.field("counts")))
        example = counts.field("values")[top.as_py()].as_py()
    # Shapes of the sample's distinct values, weighted by how often each occurs.
    sample = pc.value_counts(present.slice(0, SHAPE_SAMPLE))
    shape_counts = (pd.Series(sample.field("counts").to_numpy(), dtype="int64")
                    .groupby(shapes(sample.field("values")).to_numpy(zero_copy_only=False)).sum())
    return ColumnProfile(
        column=name,
        completeness=len(present) / rows if rows else 0.0,
        uniqueness=distinct / len(present) if len(present) else 0.0,
        distinct=int(distinct),
        consistency=float(shape_counts.max() / shape_counts.sum()) if len(shape_counts) else None,
        example=example,
    )


def profile_columns(frame: pd.DataFrame) -> list[ColumnProfile]:
    return [profile_column(column, frame[column]) for column in frame.columns]
