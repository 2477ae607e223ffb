"""Append-only writers so a chunk is written and dropped before the next is generated."""
from __future__ import annotations

from pathlib import Path
from typing import TextIO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


class ChunkedTableWriter:
    """Writes DataFrames with one fixed schema to a CSV, JSONL or Parquet file."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.schema = schema
        self.rows = 0
        self._writer: pacsv.CSVWriter | pq.ParquetWriter | None = None
        self._handle: TextIO | None = None
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".jsonl", ".parquet"):
            raise ValueError(f"cannot write {path}: use .csv, .jsonl or .parquet")
        self.kind = suffix[1:]

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        if self.kind == "jsonl":
            if self._handle is None:
                self._handle = open(self.path, "w", encoding="utf-8")
            frame.to_json(self._handle, orient="records", lines=True, force_ascii=False, date_format="iso")
        elif self.kind == "csv":
            if self._writer is None:
                self._writer = pacsv.CSVWriter(self.path, self.schema)
            self._writer.write_table(table)
        else:
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
            self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._handle is not None:
            self._handle.close()
        if self._writer is None and self._handle is None:
            # No chunk had rows: still leave a valid, empty file with the schema.
            if self.kind == "parquet":
                pq.write_table(self.schema.empty_table(), self.path)
            elif self.kind == "csv":
                pacsv.write_csv(self.schema.empty_table(), self.path)
            else:
                self.path.write_text("")


def string_schema(*columns: str) -> pa.Schema:
    return pa.schema([(name, pa.string()) for name in columns])
