"""From input files to one standardised record table, a quarantine and a profile.

Every row read ends up either in ``records`` or in ``quarantine`` with a reason: records
read = resolved + quarantined, per source.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from identigraph.resolution import standardise as std
from identigraph.resolution.config import ROW_NUMBER, ConfigError, LinkageConfig, SourceConfig
from identigraph.resolution.encoding import EncodedColumn, records_from_arrow
from identigraph.resolution.io import READABLE_SUFFIXES, read_sample, read_table_checked
from identigraph.resolution.profiling import present_values, profile_present
from identigraph.resolution.semantic_types import STANDARD_COLUMNS, VALIDITY_COLUMNS, SourceColumns, standardise_columns

QUARANTINE_COLUMNS = ("source", "file", "line", "record_id", "reason", "raw")
WITHHELD_ERASED = "(erased: see the forget request in the reason)"
# Sources standardised at once: one per core, at most four (each holds its file's columns).
INGEST_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass
class SourceStats:
    file: str
    read: int = 0
    resolved: int = 0
    quarantined: int = 0
    unmapped_columns: list[str] = field(default_factory=list)


@dataclass
class IngestResult:
    records: pd.DataFrame  # source, record_id, STANDARD_COLUMNS, category__*/text__* columns
    records_table: pa.Table  # the same records as Arrow, for writing records.parquet without converting back
    quarantine: pd.DataFrame
    stats: dict[str, SourceStats]
    profile: dict
    encoded: dict[str, EncodedColumn] = field(default_factory=dict)  # the records' columns as codes
    phone_region: str | None = None  # the region national phone numbers were read in
    # The order each source's dates of birth were read in (standardise.date_format_order).
    date_formats: dict[str, list[str]] = field(default_factory=dict)


def record_keys(source: pd.Series, record_id: pd.Series) -> pd.Series:
    """``source:record_id``, the key of a record in every artifact and in the graph."""
    return source.astype(str) + ":" + record_id.astype(str)


def key_rank(keys: np.ndarray) -> np.ndarray:
    """Each record's rank among the ``source:record_id`` keys of a run, in string order: an
    order of the records that does not depend on the order they were read in."""
    return pd.factorize(pd.Series(keys, dtype=object), sort=True)[0]


def customer_of_record(entities: pd.DataFrame) -> pd.Series:
    """Customer (``entity_id``) of each record of an ``entities.parquet``, indexed by record key."""
    return pd.Series(entities["entity_id"].to_numpy(),
                     index=record_keys(entities["source"], entities["record_id"]).to_numpy())


def input_files(inputs: list[Path], config: LinkageConfig | None) -> list[Path]:
    """Files named, plus readable files of folders named. With per-source tables in the
    config, a folder contributes only the files those tables name."""
    files: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in READABLE_SUFFIXES)
            if config is not None and config.sources:
                found = [p for p in found if p.stem in config.sources]
                missing = set(config.sources) - {p.stem for p in found}
                if missing:
                    raise ConfigError(f"{item}: no file for the config's sources {sorted(missing)} "
                                      f"(looked for {', '.join(READABLE_SUFFIXES)})")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    if not files:
        raise FileNotFoundError(f"no CSV, JSONL or Parquet files in {', '.join(map(str, inputs))}")
    stems = [p.stem for p in files]
    duplicated = {s for s in stems if stems.count(s) > 1}
    if duplicated:
        raise ConfigError(f"several input files share the stem(s) {sorted(duplicated)}; a source is "
                          "named by its file stem, so rename one")
    return files


def _row_numbers(rows: int, bad_rows) -> pa.Array:
    """Record ids of a source without an id column: each parsed row's number among the
    file's data rows (first = 1), counting the unparseable rows it skipped."""
    skipped = sorted({b.line - 1 for b in bad_rows if b.line is not None})
    numbers = np.arange(1, rows + len(skipped) + 1)
    numbers = numbers[~np.isin(numbers, skipped)][:rows]
    return pa.array(numbers.astype(str), type=pa.string())


def _quarantine_rows(source, file: str, lines, ids, reasons, raws) -> pd.DataFrame:
    """``source``: one name, or one per row."""
    return pd.DataFrame({"source": source, "file": file, "line": pd.array(lines, dtype="Int64"),
                         "record_id": pd.array(ids, dtype="string"), "reason": reasons, "raw": raws})


def standardise_source(table: pa.Table, source: SourceConfig, default_phone_region: str | None,
                       date_order: Sequence[str] | None = None, judge_placeholders: bool = True,
                       placeholder_dates: tuple[frozenset[str], ...] | None = None) -> dict[str, pa.Array]:
    """Standardised columns of one source's rows (already free of quarantined rows), by the
    semantic types of its columns (``resolution.semantic_types``). ``date_order``: the
    order its dates are read in (default: ``source_date_order`` of these rows);
    ``judge_placeholders`` False for records matched on their own; ``placeholder_dates``:
    per date-of-birth column, the placeholders judged on the whole column elsewhere (these
    rows are part of a source)."""
    by_type: dict[str, list[str]] = {}
    for column, kind in source.fields.items():
        by_type.setdefault(kind, []).append(column)
    order = tuple(date_order) if date_order is not None else tuple(source_date_order(table, source))
    return standardise_columns(SourceColumns(table, by_type, default_phone_region, order, judge_placeholders,
                                             placeholder_dates))


def source_date_order(table: pa.Table, source: SourceConfig) -> list[str]:
    """The order one source's dates of birth are read in: ``DATE_FORMATS`` ranked on all its
    date-of-birth columns together (a system writes its dates one way)."""
    columns = [std.as_string_array(table[c]) for c, kind in source.fields.items()
               if kind == "date_of_birth" and c in table.column_names]
    if not columns:
        return list(std.DATE_FORMATS)
    return std.date_format_order(pa.concat_arrays(columns))


def phone_region(files: list[Path], config: LinkageConfig) -> str | None:
    """The config's ``default_phone_region``, else the one the numbers of all inputs point to
    (judged on the head of each file: ``standardise.infer_phone_region``)."""
    if config.model.default_phone_region:
        return config.model.default_phone_region
    samples = []
    for path in files:
        columns = [c for c, kind in config.for_source(path.stem).fields.items() if kind == "phone"]
        if columns:
            sample = read_sample(path)
            samples += [sample[c].dropna().astype(str).tolist() for c in columns if c in sample.columns]
    return std.infer_phone_region(samples) if samples else None


@dataclass
class _SourceResult:
    source: str
    part: pa.Table
    quarantined: list[pd.DataFrame]
    stat: SourceStats
    profile: dict
    date_order: list[str] = field(default_factory=list)
    record_sources: list[str] = field(default_factory=list)


def _ingest_source(path: Path, config: LinkageConfig, forgotten: dict[str, str], region: str | None) -> _SourceResult:
    """Read, check and standardise one source: its standardised rows, quarantined rows,
    counts and profile."""
    quarantined: list[pd.DataFrame] = []
    source_name = path.stem
    source = config.for_source(source_name)
    result = read_table_checked(path)
    table = result.table
    stat = SourceStats(file=path.name, read=table.num_rows + len(result.bad_rows))
    missing = [c for c in [source.id_column, source.source_column, *source.fields]
               if c and c != ROW_NUMBER and c not in table.column_names]
    if missing and table.num_columns == 0:
        # Nothing readable (e.g. every JSONL line broken): no columns to map, every row quarantined.
        table = pa.table({c: pa.nulls(0, pa.string()) for c in missing})
        missing = []
    if missing:
        raise ConfigError(f"{path}: column(s) {missing} named in the config are not in the file; "
                          f"its columns are {table.column_names}")
    stat.unmapped_columns = [c for c in table.column_names
                             if c not in source.fields and c not in (source.id_column, source.source_column)]
    if result.bad_rows:
        quarantined.append(_quarantine_rows(
            source_name, path.name, [b.line for b in result.bad_rows], [None] * len(result.bad_rows),
            [f"unparseable row: {b.error}" for b in result.bad_rows], [b.text for b in result.bad_rows]))

    if source.id_column == ROW_NUMBER:
        ids = _row_numbers(table.num_rows, result.bad_rows)
    else:
        ids = pc.utf8_trim_whitespace(std.as_string_array(table[source.id_column]))
    ids_pd = pd.Series(ids.to_pandas(), dtype="string")
    sources = _row_sources(table, source.source_column, source_name)
    keys = sources + ":" + ids_pd
    no_id = ids_pd.isna() | (ids_pd == "")
    repeated = keys.duplicated(keep="first") & ~no_id
    erased = keys.isin(forgotten.keys()).fillna(False) & ~no_id
    bad = (no_id | repeated | erased).to_numpy()
    if bad.any():
        positions = np.flatnonzero(bad)
        first_seen = pd.Series(np.arange(len(keys)), index=keys).groupby(level=0).min()

        def reason(i: int) -> str:
            if no_id.iloc[i]:
                return f"missing id in column {source.id_column!r}"
            if erased.iloc[i]:
                return f"erased by forget request {forgotten[keys.iloc[i]]}: not linked again"
            return f"duplicate id {ids_pd.iloc[i]!r} in {sources.iloc[i]} (first at row {first_seen[keys.iloc[i]] + 1})"

        reasons = [reason(int(i)) for i in positions]
        raws = [WITHHELD_ERASED if erased.iloc[i] else json.dumps(row, ensure_ascii=False)
                for i, row in zip(positions, table.take(pa.array(positions)).to_pylist())]
        quarantined.append(_quarantine_rows(sources.iloc[positions].to_numpy(object), path.name, [None] * len(positions),
                                            [ids_pd.iloc[i] if not no_id.iloc[i] else None for i in positions],
                                            reasons, raws))
        keep = pa.array(~bad)
        table = table.filter(keep)
        ids = ids.filter(keep)
        sources = sources[~bad]
    date_order = source_date_order(table, source)
    columns = standardise_source(table, source, region, date_order)
    part = _records_part(pa.array(sources.to_numpy(object), type=pa.string()), ids, columns)
    stat.resolved = part.num_rows
    stat.quarantined = stat.read - stat.resolved
    return _SourceResult(source_name, part, quarantined, stat, _profile_source(table, source, columns, stat),
                         date_order, sorted(set(sources.tolist())))


def _records_part(sources: pa.Array, ids: pa.Array, columns: dict[str, pa.Array]) -> pa.Table:
    """One source's part of records.parquet: source, record_id, the standard columns, then
    its own (category__*, text__*), all as text."""
    names = ["source", "record_id", *STANDARD_COLUMNS, *(c for c in columns if c not in STANDARD_COLUMNS)]
    return pa.table([sources, ids, *(columns[c].cast(pa.string()) for c in names[2:])], names=names)


def _row_sources(table: pa.Table, source_column: str | None, file_source: str) -> pd.Series:
    """Each row's source: its value in ``source_column`` (trimmed; a ":" becomes "-", since
    record keys are ``source:record_id``), else the file's."""
    if not source_column:
        return pd.Series(np.full(table.num_rows, file_source, dtype=object))
    named = pc.replace_substring(pc.utf8_trim_whitespace(std.as_string_array(table[source_column])), ":", "-")
    named = pd.Series(named.to_pandas(), dtype=object)
    return named.where(named.notna() & (named != ""), file_source).astype(object)


# A semantic type given several values (a source with two columns of one type) is at most
# this many columns.
MAX_VALUES_PER_TYPE = 9
# Dates already read as their source's are (ISO text) read again as themselves.
ISO_DATES = ("%Y-%m-%d",)
TypedValue = str | list[str | None] | None


def standardise_typed(records: list[dict[str, TypedValue]], sources: list[str], region: str | None,
                      date_formats: dict[str, list[str]]) -> dict[str, pa.Array]:
    """Standardised columns of records whose values are named by semantic type (a list where
    a source has several columns of one type, in their order), as their sources' rows are
    standardised: dates in the order the run read each source's (``date_formats``), phone
    numbers in ``region``. Nothing else depends on the source or on the other records, so
    after each source's dates are read (as ISO text) all records are standardised in one
    pass: the result of one by one, for the price of one call (``POST /v1/match``, and the
    API's writes in a later batch run)."""
    columns: list[dict[str, str | None]] = []
    for record in records:
        one: dict[str, str | None] = {}
        for kind, value in record.items():
            values = value if isinstance(value, list) else [value]
            for i, item in enumerate(values[:MAX_VALUES_PER_TYPE]):
                one[kind if i == 0 else f"{kind}#{i + 1}"] = None if item is None else str(item)
        columns.append(one)
    dated: dict[tuple[str, str], list[int]] = {}
    for i, (one, source) in enumerate(zip(columns, sources)):
        for column in one:
            if column.split("#")[0] == "date_of_birth":
                dated.setdefault((source, column), []).append(i)
    for (source, column), members in dated.items():
        iso = std.parse_dates([columns[i][column] for i in members], order=date_formats.get(source, std.DATE_FORMATS),
                              placeholders=False).to_pylist()
        for i, value in zip(members, iso):
            columns[i][column] = value
    names = sorted({name for one in columns for name in one}, key=lambda n: (n.split("#")[0], len(n), n))

    def raw(name: str) -> tuple[str, str]:
        """(column, type): ``text__notes`` is column notes of type text (the standardiser
        names its output text__notes again); ``email#2`` the second e-mail column."""
        kind, _, column = name.partition("__")
        return (column, kind) if column else (name, name.split("#")[0])

    table = (pa.table({raw(name)[0]: pa.array([one.get(name) for one in columns], type=pa.string())
                       for name in names})
             if names else pa.table({"_": pa.nulls(len(records), pa.string())}))
    typed = SourceConfig(id_column="", fields=dict(raw(name) for name in names))
    return standardise_source(table, typed, region, ISO_DATES, judge_placeholders=False)


@dataclass
class WrittenRecords:
    """Records written through the API since a run (``resolution.record_log``): the latest
    version of each, read as the API read them (the run's phone region and date orders)."""
    file: str
    entries: list[dict]
    phone_region: str | None
    date_formats: dict[str, list[str]]


def _ingest_written(written: WrittenRecords, forgotten: dict[str, str]) -> _SourceResult:
    """The written records as one more source part: fields named by semantic type, each
    source's rows standardised as ``RecordMatcher.standardise`` standardises them."""
    latest = {f"{e['source']}:{e['record_id']}": e for e in written.entries}
    stat = SourceStats(file=written.file, read=len(latest))
    erased = [key for key in latest if key in forgotten or latest[key].get("erased")]
    quarantined = []
    if erased:
        quarantined.append(_quarantine_rows(
            [latest[k]["source"] for k in erased], written.file, [latest[k]["seq"] for k in erased],
            [str(latest[k]["record_id"]) for k in erased],
            [f"erased by forget request {forgotten.get(k) or latest[k].get('erased')}: not linked again"
             for k in erased], [WITHHELD_ERASED] * len(erased)))
    entries = [entry for key, entry in latest.items() if key not in erased]
    columns = standardise_typed([e["fields"] for e in entries], [e["source"] for e in entries],
                                written.phone_region, written.date_formats)
    part = _records_part(pa.array([e["source"] for e in entries], type=pa.string()),
                         pa.array([str(e["record_id"]) for e in entries], type=pa.string()), columns)
    stat.resolved = part.num_rows
    stat.quarantined = stat.read - stat.resolved
    return _SourceResult(written.file, part, quarantined, stat, {"file": written.file, "read": stat.read,
                                                                 "resolved": stat.resolved,
                                                                 "quarantined": stat.quarantined},
                         [], [])


def ingest(files: list[Path], config: LinkageConfig, forgotten: dict[str, str] | None = None,
           written: WrittenRecords | None = None) -> IngestResult:
    """``forgotten``: ``source:record_id`` -> forget request id; those records are quarantined
    (raw row withheld), never linked again. ``written``: records written through the API,
    one more source (a record in ``files`` too is taken from ``files``)."""
    forgotten = forgotten or {}
    region = phone_region(files, config) if files else (written.phone_region if written else None)
    # Sources are independent: two at a time, one per core (Arrow's kernels and rapidfuzz
    # release the GIL, so the threads overlap for most of the work).
    with ThreadPoolExecutor(max_workers=INGEST_THREADS) as pool:
        results = list(pool.map(lambda path: _ingest_source(path, config, forgotten, region), files))
    if written is not None and written.entries:
        in_files = {f"{s}:{i}" for r in results
                    for s, i in zip(r.part["source"].to_pylist(), r.part["record_id"].to_pylist())}
        results.append(_ingest_written(
            WrittenRecords(written.file, [e for e in written.entries if f"{e['source']}:{e['record_id']}" not in in_files],
                           written.phone_region, written.date_formats), forgotten))
    parts = [r.part for r in results]
    quarantined = [frame for r in results for frame in r.quarantined]
    stats = {r.source: r.stat for r in results}
    profile = {"sources": {r.source: r.profile for r in results}}
    # Arrow concatenation: pandas checks object columns for NA value by value.
    combined = pa.concat_tables(parts, promote_options="default")
    records, encoded = records_from_arrow(combined)
    quarantine = (pd.concat(quarantined, ignore_index=True) if quarantined
                  else pd.DataFrame({c: pd.Series(dtype="object") for c in QUARANTINE_COLUMNS}))
    date_formats = {name: r.date_order for r in results for name in r.record_sources}
    return IngestResult(records, combined, quarantine, stats, profile, encoded, region, date_formats)


def _profile_source(table: pa.Table, source: SourceConfig, columns: dict[str, pa.Array], stat: SourceStats) -> dict:
    """Per field: completeness, uniqueness, consistency (``profiling.profile_column``) and
    validity: the share of present values the standardiser accepted."""
    fields = {}
    for column, kind in source.fields.items():
        if kind == "ignore":
            continue
        raw = present_values(table[column])
        measures = profile_present(column, raw)
        standard = columns.get(VALIDITY_COLUMNS.get(kind, ""))
        present = len(raw) - raw.null_count
        valid = None
        if standard is not None and present:
            valid = float(pc.sum(pc.and_kleene(pc.is_valid(raw), pc.is_valid(standard))).as_py() or 0) / present
        fields[column] = {"type": kind, "completeness": measures.completeness, "validity": valid,
                          "uniqueness": measures.uniqueness, "consistency": measures.consistency}
    return {"file": stat.file, "read": stat.read, "resolved": stat.resolved, "quarantined": stat.quarantined,
            "unmapped_columns": stat.unmapped_columns, "fields": fields}


def write_profile(profile: dict, path: Path) -> None:
    Path(path).write_text(json.dumps(profile, indent=2, ensure_ascii=False))
