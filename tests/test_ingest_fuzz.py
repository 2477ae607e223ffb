"""Property-based tests of ingestion: hypothesis writes channel extracts (CSV, JSONL, Parquet)
with arbitrary text, wrong encodings, broken rows, huge fields, duplicate and missing ids,
extra and missing columns. Whatever it writes, reading never crashes: either a clear error
names the file (and the column), or every record written is resolved or quarantined with a
reason, and records in = resolved + quarantined."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identigraph.resolution.config import ConfigError, LinkageConfig
from identigraph.resolution.ingest import ingest
from identigraph.resolution.io import InputFileError
from identigraph.resolution.linker import Linker

# Examples per property in the suite; a longer campaign: IDENTIGRAPH_FUZZ_SCALE=20 pytest tests/test_ingest_fuzz.py
SCALE = float(os.environ.get("IDENTIGRAPH_FUZZ_SCALE", "1"))
FIELDS = {"first": "first_name", "last": "last_name", "email": "email", "phone": "phone",
          "dob": "date_of_birth", "postcode": "postcode", "address": "street_address", "city": "city",
          "national_id": "identifier", "gender": "gender", "country": "country", "full": "full_name"}
CONFIG = LinkageConfig(id_column="id", fields=FIELDS)
REALISTIC = ["José", "O'Brien-Smith", "李", "Ng", "jo@example.com", "JO@EXAMPLE.COM ", "+44 7700 900123",
             "07700900123", "1987-02-30", "31/12/1999", "SW1A 1AA", "10 Downing St", "M", "f", "GB", "AB123456C",
             "  ", "null", "N/A", "0", "1e309", "=cmd|' /C calc'!A0", "\u202eevil", "a\nb", 'say "hi"', "x,y"]
HUGE = "Z" * 1_500_000  # wider than Arrow's 1 MiB CSV block

values = st.one_of(st.none(), st.sampled_from(REALISTIC), st.text(max_size=30),
                   st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12))
ids = st.one_of(st.none(), st.just(""), st.just(" "), st.text(alphabet="ab12", min_size=1, max_size=3))
rows = st.lists(st.fixed_dictionaries({"id": ids, **{column: values for column in FIELDS}}), max_size=20)
CSV_FAULTS = ("latin1", "too_many_fields", "huge", "blank_line", "extra_column")
JSONL_FAULTS = ("latin1", "truncated", "not_an_object", "huge", "blank_line", "extra_column", "nested", "numbers")
PARQUET_FAULTS = ("huge", "extra_column")


def _fault_lists(faults):
    return st.lists(st.sampled_from(faults), max_size=4)


extracts = st.one_of(
    st.tuples(st.just("csv"), rows, _fault_lists(CSV_FAULTS)),
    st.tuples(st.just("jsonl"), rows, _fault_lists(JSONL_FAULTS)),
    st.tuples(st.just("parquet"), rows, _fault_lists(PARQUET_FAULTS)),
)


def _line(columns: list[str], **values) -> dict:
    """A JSON object with every column of the file (null where not given)."""
    return {c: values.get(c) for c in columns}


def write_extract(directory: Path, kind: str, records: list[dict], faults: list[str],
                  drop: str | None = None) -> tuple[Path, int]:
    """Writes one extract; returns its path and how many records it holds (bad ones included)."""
    columns = [c for c in ["id", *FIELDS] if c != drop] + (["loyalty_tier"] if "extra_column" in faults else [])
    records = [dict(r, loyalty_tier="gold") for r in records]
    if "huge" in faults:
        records.append({"id": "huge", "first": HUGE, "email": HUGE[:300_000]})
    path = directory / f"shop.{kind}"
    if kind == "parquet":
        table = pa.table({c: pa.array([r.get(c) for r in records], type=pa.string()) for c in columns})
        pq.write_table(table, path)
        return path, len(records)
    written = len(records)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        if kind == "csv":
            writer = csv.writer(handle)
            writer.writerow(columns)
            for record in records:
                writer.writerow(["" if record.get(c) is None else record.get(c) for c in columns])
        else:
            for record in records:
                handle.write(json.dumps({c: record.get(c) for c in columns}, ensure_ascii=False) + "\n")
        if "blank_line" in faults:
            handle.write("\n")
        if "too_many_fields" in faults:
            handle.write(",".join(["x"] * (len(columns) + 3)) + "\n")
            written += 1
        if "truncated" in faults:
            handle.write('{"id": "t1", "first": "bro\n')
            written += 1
        if "not_an_object" in faults:
            handle.write("[1, 2, 3]\n")
            written += 1
        if "nested" in faults:
            handle.write(json.dumps(_line(columns, id="n1", first={"given": "Ann"}, phone=[1, 2])) + "\n")
            written += 1
        if "numbers" in faults:
            handle.write(json.dumps(_line(columns, id=17, first=3.5, dob=19870102)) + "\n")
            written += 1
    if "latin1" in faults:
        row = (["L1"] + ["Jos\xe9"] + [""] * (len(columns) - 2)) if kind == "csv" else None
        line = ",".join(row) if kind == "csv" else json.dumps({"id": "L1", "first": "Jos\xe9"}, ensure_ascii=False)
        with open(path, "ab") as handle:
            handle.write(line.encode("latin-1") + b"\n")
        written += 1
    return path, written


def check_accounting(path: Path, written: int, result) -> None:
    stat = result.stats[path.stem]
    assert stat.read == written, f"{written} records written, {stat.read} read"
    assert stat.read == stat.resolved + stat.quarantined
    assert len(result.records) == stat.resolved and len(result.quarantine) == stat.quarantined
    assert result.quarantine["reason"].str.len().gt(0).all()
    keys = result.records["source"] + ":" + result.records["record_id"]
    assert keys.is_unique and result.records["record_id"].str.strip().str.len().gt(0).all()
    for reason in result.quarantine["reason"]:
        if "UTF-8" in reason:
            assert "'first'" in reason and "re-save" in reason


@settings(max_examples=int(150 * SCALE), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow, HealthCheck.data_too_large])
@given(extract=extracts)
def test_every_record_is_resolved_or_quarantined(tmp_path_factory, extract):
    kind, records, faults = extract
    path, written = write_extract(tmp_path_factory.mktemp("fuzz"), kind, records, faults)
    check_accounting(path, written, ingest([path], CONFIG))


@settings(max_examples=int(40 * SCALE), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(extract=extracts, drop=st.sampled_from(["id", *FIELDS]))
def test_a_missing_column_is_one_clear_error_naming_file_and_column(tmp_path_factory, extract, drop):
    kind, records, faults = extract
    path, _ = write_extract(tmp_path_factory.mktemp("fuzz"), kind, records, faults, drop=drop)
    try:
        result = ingest([path], CONFIG)
    except ConfigError as error:
        assert str(path) in str(error) and repr(drop) in str(error)
        return
    # Only a JSONL file without a single readable line has no columns to miss.
    assert kind == "jsonl" and result.stats[path.stem].resolved == 0


@settings(max_examples=int(25 * SCALE), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(extract=extracts)
def test_the_whole_resolution_run_survives_and_accounts_for_every_record(tmp_path_factory, extract):
    kind, records, faults = extract
    work = tmp_path_factory.mktemp("fuzz")
    path, written = write_extract(work, kind, records, faults)
    result = Linker(CONFIG).run([path], work / "out")
    assert result.read == written == result.records + result.quarantined
    entities = pd.read_parquet(work / "out" / "entities.parquet")
    quarantine = pd.read_parquet(work / "out" / "quarantine.parquet")
    assert len(entities) + len(quarantine) == written
    assert len(pd.read_parquet(work / "out" / "golden.parquet")) == entities["entity_id"].nunique()


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_wrongly_encoded_row_is_quarantined_naming_row_and_column(tmp_path, kind):
    path, written = write_extract(tmp_path, kind, [{"id": "a1", "first": "Ann", "last": "Lee"}], ["latin1"])
    result = ingest([path], CONFIG)
    assert result.stats["shop"].resolved == 1 and result.stats["shop"].quarantined == 1
    reason = result.quarantine["reason"].iloc[0]
    assert "not UTF-8" in reason and "'first'" in reason and "0xe9" in reason
    assert ("data row 2" in reason) if kind == "csv" else (result.quarantine["line"].iloc[0] == 2)


def test_an_empty_csv_names_the_file_and_what_is_missing(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("")
    with pytest.raises(InputFileError, match=r"shop\.csv: no header line"):
        ingest([path], CONFIG)
