"""Standardised columns as integer codes: exact agreement is a code comparison, and fuzzy
scores are computed once per distinct pair of values."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class EncodedColumn:
    codes: np.ndarray  # int32, -1 where missing
    values: np.ndarray  # object array of the distinct values
    counts: np.ndarray  # records holding each distinct value

    @classmethod
    def of_arrow(cls, array) -> "EncodedColumn":
        """The same codes and values as ``of`` (both number values in order of first
        appearance), from an Arrow column by Arrow's hashing: several times faster than
        pandas hashing a million Python strings."""
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        encoded = pc.dictionary_encode(array)
        codes = encoded.indices.fill_null(-1).to_numpy().astype(np.int32)
        values = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
        counts = np.bincount(codes[codes >= 0], minlength=len(values)).astype(np.int64)
        return cls(codes, values, counts)

    @classmethod
    def of(cls, values) -> "EncodedColumn":
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        codes = codes.astype(np.int32)
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques)).astype(np.int64)
        return cls(codes, np.asarray(uniques, dtype=object), counts)

    def frequency(self, codes: np.ndarray, n_records: int) -> np.ndarray:
        """Share of records holding each code's value (term frequency)."""
        return self.counts[codes] / n_records


def records_from_arrow(table: pa.Table, unique: tuple[str, ...] = ("record_id",)
                       ) -> tuple[pd.DataFrame, dict[str, EncodedColumn]]:
    """The records as a DataFrame in which each distinct string is one Python object (a
    million records hold a few thousand given names, cities, dates: a string object per row
    made the frame 1 GB at 1M records, this way about half that), and the encodings made on
    the way (``EncodedRecords`` starts from them). ``unique``: columns with a value per
    record, converted as they are."""
    columns, encoded = {}, {}
    for name in table.column_names:
        column = table[name]
        if name in unique or not pa.types.is_string(column.type):
            columns[name] = column.to_numpy(zero_copy_only=False)
            continue
        encoded[name] = EncodedColumn.of_arrow(column)
        columns[name] = np.append(encoded[name].values, [None])[encoded[name].codes]  # code -1: missing
    return pd.DataFrame(columns), encoded


class ColumnStatistics(Protocol):
    """What choosing rules and comparisons reads of the records: which columns there are,
    how many records have each, and how many distinct values (``EncodedRecords``, or the
    Spark engine's counts over every record)."""

    records: pd.DataFrame  # its columns: the record columns

    def has(self, column: str, min_share: float = 0.0) -> bool: ...

    def __contains__(self, column: str) -> bool: ...

    def __getitem__(self, column: str): ...


class EncodedRecords:
    """Lazily encoded standardised columns of one record table."""

    def __init__(self, records: pd.DataFrame, table: pa.Table | None = None,
                 encoded: dict[str, EncodedColumn] | None = None):
        """``table``: the same records in the same order as Arrow (the ingested table),
        where the caller has it: its string columns are encoded from there. ``encoded``:
        columns encoded already (``records_from_arrow``)."""
        self.records = records
        self._table = table if table is not None and table.num_rows == len(records) else None
        self.n = len(records)
        # Records of the whole run, which term frequencies are shares of: ``n`` unless these
        # are some of the run's records (a Spark partition) whose columns carry the run's counts.
        self.population = self.n
        self._columns: dict[str, EncodedColumn] = dict(encoded or {})
        # Results computed once per run from whole columns (shared-value tests).
        self.cache: dict[tuple, np.ndarray] = {}
        self.source_codes, self.sources = pd.factorize(records["source"])

    def __getitem__(self, column: str) -> EncodedColumn:
        if column not in self._columns:
            if (self._table is not None and column in self._table.column_names
                    and pa.types.is_string(self._table.schema.field(column).type)):
                self._columns[column] = EncodedColumn.of_arrow(self._table[column])
            else:
                self._columns[column] = EncodedColumn.of(self.records[column].to_numpy(object))
        return self._columns[column]

    def with_counts(self, column: str, counts_of_records: np.ndarray) -> None:
        """Replace ``column``'s per-value counts by those of the run these records are part
        of (a Spark partition): ``counts_of_records`` holds, per record, the run's count of
        its value (any number where the value is missing)."""
        encoded = self[column]
        counts = np.zeros(len(encoded.values), dtype=np.int64)
        present = encoded.codes >= 0
        counts[encoded.codes[present]] = np.asarray(counts_of_records)[present]
        self._columns[column] = EncodedColumn(encoded.codes, encoded.values, counts)

    def derived_per_value(self, name: str, column: str, function) -> EncodedColumn:
        """Register ``function(value)`` of ``column`` (None: missing), computed once per
        distinct value; the same codes as ``EncodedColumn.of`` over the records' values."""
        if name not in self._columns:
            base = self[column]
            mapped, mapped_values = pd.factorize(pd.Series([function(v) for v in base.values], dtype=object))
            per_record = np.where(base.codes >= 0, np.append(mapped, -1)[base.codes], -1)
            present = per_record >= 0
            codes = np.full(self.n, -1, dtype=np.int32)
            codes[present], order = pd.factorize(per_record[present])  # numbered by first appearance
            values = np.asarray(mapped_values, dtype=object)[order]
            self._columns[name] = EncodedColumn(codes, values, np.bincount(codes[present], minlength=len(values)))
        return self._columns[name]

    def derived_arrow(self, name: str, array: pa.Array) -> EncodedColumn:
        """Register a column computed with Arrow kernels (one value per record)."""
        if name not in self._columns:
            self._columns[name] = EncodedColumn.of_arrow(array)
        return self._columns[name]

    def arrow(self, column: str) -> pa.Array:
        """A standardised column as an Arrow string array."""
        if self._table is not None and column in self._table.column_names:
            array = self._table[column]
            return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        return pa.array(self.records[column].to_numpy(object), type=pa.string(), from_pandas=True)

    def codes_so_far(self) -> dict[str, np.ndarray]:
        """Codes of the columns encoded so far (later steps reuse them rather than factorise again)."""
        return {name: column.codes for name, column in self._columns.items()}

    def __contains__(self, column: str) -> bool:
        return column in self._columns or column in self.records.columns

    def has(self, column: str, min_share: float = 0.0) -> bool:
        """The column exists (standardised or derived) and more than ``min_share`` has values."""
        if column not in self.records.columns and column not in self._columns:
            return False
        codes = self[column].codes
        return len(codes) > 0 and bool((codes >= 0).mean() > min_share)
