"""Reading channel extracts (CSV, TSV, JSONL, Parquet) as text columns, keeping bad rows.

A row that cannot be parsed is not dropped: it comes back in ``ReadResult.bad_rows`` with
its line and the parser's message, and the caller quarantines it.
"""
from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

READABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
DELIMITERS = {".csv": ",", ".tsv": "\t"}


class InputFileError(ValueError):
    """A file could not be read; the message names the file and what to do."""


@dataclass
class BadRow:
    line: int | None  # 1-based line in the file, where the parser knows it
    text: str
    error: str


@dataclass
class ReadResult:
    table: pa.Table  # every column as string
    bad_rows: list[BadRow] = field(default_factory=list)


def _all_strings(table: pa.Table) -> pa.Table:
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            columns.append(column.cast(pa.string()))
        elif pa.types.is_null(column.type):
            columns.append(pa.nulls(len(column), pa.string()))
        else:
            columns.append(pa.array(column.to_pandas().astype("string"), type=pa.string(), from_pandas=True))
    return pa.table(columns, names=table.column_names)


# Arrow's CSV block: a value longer than this is an error ("straddles two block boundaries")
# unless the block is widened, which the reader does on a retry.
CSV_BLOCK_BYTES = 1 << 20


def _read_csv(path: Path | io.BytesIO, delimiter: str = ",") -> ReadResult:
    if isinstance(path, io.BytesIO):
        header_line = path.getvalue().split(b"\n", 1)[0].decode("utf-8")
        size = len(path.getvalue())
    else:
        with open(path, "rb") as handle:  # a text reader would decode a whole buffer, not just the header
            header_line = handle.readline().decode("utf-8")
        size = Path(path).stat().st_size
    if not header_line.strip():
        raise InputFileError(f"{path}: no header line (the file is empty or starts with a blank line); "
                             "a CSV extract needs its column names on the first line")
    names = list(pd.read_csv(io.StringIO(header_line), dtype=str, nrows=0, sep=delimiter).columns)
    bad: list[BadRow] = []

    def keep_bad(row) -> str:
        bad.append(BadRow(row.number, row.text, f"expected {row.expected_columns} columns, found {row.actual_columns}"))
        return "skip"

    def read(column_type: pa.DataType, block_size: int) -> pa.Table:
        bad.clear()
        if isinstance(path, io.BytesIO):
            path.seek(0)
        return pacsv.read_csv(
            path, read_options=pacsv.ReadOptions(block_size=block_size),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=keep_bad,
                                             newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={name: column_type for name in names},
                                                 strings_can_be_null=True, null_values=[""]),
        )

    column_type, block_size = pa.string(), CSV_BLOCK_BYTES
    while True:
        try:
            table = read(column_type, block_size)
            break
        except pa.ArrowInvalid as error:
            message = str(error).lower()
            if "straddl" in message and block_size <= size:
                block_size = size + 1  # one block holds the whole file, so no value can straddle
            elif "utf8" in message and column_type == pa.string():
                column_type = pa.binary()  # read the bytes, then quarantine the rows that are not UTF-8
            else:
                raise
    if column_type == pa.binary():
        table = _quarantine_invalid_utf8(table, bad)
    return ReadResult(table, bad)


def _quarantine_invalid_utf8(table: pa.Table, bad: list[BadRow]) -> pa.Table:
    """Rows with a value that is not UTF-8 become bad rows naming the row and column; the
    rest of the binary table is cast to text."""
    problems: dict[int, str] = {}
    for name in table.column_names:
        try:
            table[name].cast(pa.string())
            continue
        except pa.ArrowInvalid:
            pass
        for row, value in enumerate(table[name].to_pylist()):
            if value is None or row in problems:
                continue
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as error:
                problems[row] = (f"data row {row + 1}, column {name!r}: not UTF-8 text (byte 0x{value[error.start]:02x} "
                                 f"at position {error.start}); re-save the file as UTF-8")
    for row, message in sorted(problems.items()):
        values = table.slice(row, 1).to_pylist()[0].values()
        text = ",".join("" if v is None else v.decode("utf-8", errors="replace") for v in values)
        bad.append(BadRow(None, text, message))
    keep = np.ones(table.num_rows, dtype=bool)
    keep[list(problems)] = False
    table = table.filter(pa.array(keep))
    return pa.table([column.cast(pa.string()) for column in table.columns], names=table.column_names)


def _read_jsonl(path: Path | io.BytesIO) -> ReadResult:
    """Arrow's JSON reader when every line parses as UTF-8 JSON; line by line, keeping bad
    lines, when not."""
    try:
        table = pajson.read_json(path)
        table.validate(full=True)  # Arrow's JSON reader does not check UTF-8 by itself
        return ReadResult(_all_strings(table))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if isinstance(path, io.BytesIO):
            path.seek(0)  # Arrow's reader consumed it
        return _read_jsonl_keeping_bad_lines(path)


def _read_jsonl_keeping_bad_lines(path: Path | io.BytesIO) -> ReadResult:
    rows, bad = [], []
    opened = path if isinstance(path, io.BytesIO) else open(path, "rb")
    with opened as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                bad.append(BadRow(number, raw.decode("utf-8", errors="replace").rstrip("\n"),
                                  _not_utf8_in_json(raw, error)))
                continue
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                bad.append(BadRow(number, line.rstrip("\n"), f"invalid JSON: {error.msg}"))
                continue
            if not isinstance(value, dict):
                bad.append(BadRow(number, line.rstrip("\n"), "a JSON object per line expected"))
                continue
            rows.append(value)
    frame = pd.DataFrame.from_records(rows)
    return ReadResult(_all_strings(pa.Table.from_pandas(frame.astype("string"), preserve_index=False)), bad)


def _not_utf8_in_json(raw: bytes, error: UnicodeDecodeError) -> str:
    """Names the key whose value is not UTF-8 where the line is JSON apart from that."""
    where = f"byte 0x{raw[error.start]:02x} at position {error.start}"
    try:
        value = json.loads(raw.decode("utf-8", errors="surrogateescape"))
        keys = [k for k, v in value.items() if isinstance(v, str) and any("\udc80" <= ch <= "\udcff" for ch in v)]
    except (json.JSONDecodeError, AttributeError):
        keys = []
    column = f", key {keys[0]!r}" if keys else ""
    return f"not UTF-8 text{column} ({where}); re-save the file as UTF-8"


def read_table_checked(path: Path) -> ReadResult:
    """Every column as string; rows that cannot be parsed are returned, not raised."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in DELIMITERS:
            return _read_csv(path, DELIMITERS[suffix])
        if suffix == ".jsonl":
            return _read_jsonl(path)
        if suffix == ".parquet":
            return ReadResult(_all_strings(pq.read_table(path)))
    except InputFileError:
        raise
    except UnicodeDecodeError as error:
        raise InputFileError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); "
                             "re-save the file as UTF-8") from error
    except (pa.ArrowInvalid, OSError, ValueError) as error:
        message = str(error)
        if "utf8" in message.lower() or "utf-8" in message.lower():
            raise InputFileError(f"{path}: not UTF-8 text ({message}); re-save the file as UTF-8") from error
        raise InputFileError(f"{path}: could not be read as {suffix[1:].upper()}: {message}") from error
    raise InputFileError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(READABLE_SUFFIXES)}")


def read_sample(path: Path, rows: int = 5000) -> pd.DataFrame:
    """The first ``rows`` rows as text columns, for inferring a config without reading a
    whole extract; the full reader (and its error messages) where the head does not parse."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows), None)
            if batch is not None:
                return _all_strings(pa.Table.from_batches([batch])).to_pandas()
        elif suffix in (*DELIMITERS, ".jsonl"):
            with open(path, "rb") as handle:
                head = io.BytesIO(b"".join(itertools.islice(handle, rows + (suffix in DELIMITERS))))
            return (_read_csv(head, DELIMITERS[suffix]) if suffix in DELIMITERS else _read_jsonl(head)).table.to_pandas()
    except (pa.ArrowInvalid, OSError, ValueError, UnicodeDecodeError):
        pass  # e.g. a quoted value cut by the head; the full read names the problem
    return read_table_checked(path).table.slice(0, rows).to_pandas()


def read_table(path: Path) -> pd.DataFrame:
    """All columns as pandas string dtype, missing values as <NA>; unparseable rows raise."""
    result = read_table_checked(path)
    if result.bad_rows:
        first = result.bad_rows[0]
        raise InputFileError(f"{path}: {len(result.bad_rows)} rows could not be parsed "
                             f"(first at line {first.line}: {first.error})")
    return result.table.to_pandas().astype("string")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """A table as the extract its suffix names (CSV, JSONL or Parquet): for cutting channel
    files into batches, as tests and benchmarks do."""
    path = Path(path)
    if path.suffix in DELIMITERS:
        frame.to_csv(path, index=False, sep=DELIMITERS[path.suffix])
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        raise InputFileError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(READABLE_SUFFIXES)}")
