"""Privacy by design: a pseudonymized run links as a clear one does, and neither its
artifacts, its graph tables nor the graph in the real Neo4j hold a single PII value."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.app import app
from graph.build import build_graph_tables
from graph.load import load_graph
from resolution.privacy import PII_RECORD_COLUMNS, PSEUDONYM_KEY_ENV, mask

runner = CliRunner()
KEY = "test-only-secret-0123456789abcdef"


def pii_values(small_dataset: Path, clear_resolved: Path) -> set[str]:
    """Every PII value a clear run wrote (standardised forms) and every raw one in the channel
    files (names, e-mails, phones, dates of birth, addresses, national ids)."""
    values: set[str] = set()
    records = pd.read_parquet(clear_resolved / "records.parquet")
    for column in PII_RECORD_COLUMNS:
        values |= set(records[column].dropna().astype(str))
    raw_columns = {"first_name", "last_name", "forename", "surname", "full_name", "name", "email", "email_address",
                   "phone", "mobile", "telephone", "phone_number", "dob", "date_of_birth", "birth_date",
                   "street", "address", "street_address", "postcode", "zip", "national_id", "ni_number"}
    for path in small_dataset.iterdir():
        if path.suffix in (".csv", ".jsonl", ".parquet") and path.stem not in ("orders", "sessions", "products",
                                                                                "fraud_labels"):
            frame = (pd.read_csv(path, dtype=str) if path.suffix == ".csv" else
                     pd.read_json(path, lines=True, dtype=str) if path.suffix == ".jsonl" else pd.read_parquet(path))
            for column in frame.columns:
                if column.lower() in raw_columns:
                    values |= set(frame[column].dropna().astype(str))
    # Record ids stay in clear (orders and sessions join on them), also where a source uses
    # one as an identifier field too (the loyalty number). Single characters and short codes
    # ("M", "1") are not identifying and would match anything.
    values -= set(records["record_id"].astype(str))
    return {v for v in values if len(v.strip()) >= 4}


def strings_in_artifact(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        out = []
        for column in table.columns:
            values = column.to_pylist()
            out += [str(v) for v in values if isinstance(v, str)]
            out += [str(x) for v in values if isinstance(v, list) for x in v]
        return out
    if path.suffix in (".json", ".toml", ".csv", ".txt", ".html"):
        return [path.read_text(errors="replace")]
    return []


@pytest.fixture(scope="module")
def pseudonymized(small_dataset, tmp_path_factory, monkeypatch_module) -> Path:
    out = tmp_path_factory.mktemp("pseudonymized") / "resolved"
    monkeypatch_module.setenv(PSEUDONYM_KEY_ENV, KEY)
    result = runner.invoke(app, ["resolve", str(small_dataset), "--out", str(out),
                                 "--config", str(small_dataset / "linkage.toml"), "--pseudonymize"])
    assert result.exit_code == 0, result.output
    assert "PII pseudonymized" in result.output and KEY not in result.output
    build_graph_tables(out, out.parent / "tables", small_dataset)
    return out


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_pseudonymized_linkage_gives_the_same_customers(pseudonymized, graph_tables):
    clear = pd.read_parquet(graph_tables.parent / "resolved" / "entities.parquet")
    hidden = pd.read_parquet(pseudonymized / "entities.parquet")
    pd.testing.assert_frame_equal(clear.sort_values(["source", "record_id"]).reset_index(drop=True),
                                  hidden.sort_values(["source", "record_id"]).reset_index(drop=True))


def test_no_artifact_or_graph_table_holds_pii(pseudonymized, graph_tables, small_dataset):
    secrets = pii_values(small_dataset, graph_tables.parent / "resolved")
    assert len(secrets) > 5_000  # the search has something to find
    long_secrets = [s for s in secrets if len(s) >= 8]
    files = [p for p in pseudonymized.parent.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"records.parquet", "golden.parquet", "quarantine.parquet", "Customer.parquet",
                                       "SourceRecord.parquet", "Email.parquet", "Phone.parquet", "Address.parquet"}
    for path in files:
        for text in strings_in_artifact(path):
            assert text not in secrets, f"{path.name} holds a PII value"
            if len(text) > 64:  # documents: search inside them
                assert not any(s in text for s in long_secrets), f"{path.name} holds a PII value"
            assert KEY not in text
    # The graph still joins customers through shared identifiers: pseudonyms are consistent.
    emails = pd.read_parquet(pseudonymized.parent / "tables" / "edges" / "HAS_EMAIL.parquet")
    assert emails.groupby("end")["start"].nunique().max() > 1
    golden = pd.read_parquet(pseudonymized / "golden.parquet")
    records = pd.read_parquet(pseudonymized / "records.parquet")
    assert golden["email"].dropna().isin(set(records["email"].dropna())).all()


@pytest.mark.neo4j
def test_the_graph_in_neo4j_holds_no_pii(pseudonymized, graph_tables, small_dataset, neo4j_db, neo4j_settings):
    secrets = pii_values(small_dataset, graph_tables.parent / "resolved")
    load_graph(pseudonymized.parent / "tables", neo4j_db, neo4j_settings.database, replace=True)
    with neo4j_db.session(database=neo4j_settings.database, default_access_mode="READ") as session:
        nodes = session.run("MATCH (n) RETURN properties(n) AS p").value()
    assert len(nodes) > 5_000
    for properties in nodes:
        for value in properties.values():
            for item in value if isinstance(value, list) else [value]:
                assert not (isinstance(item, str) and item in secrets)


def test_explain_on_a_pseudonymized_run_uses_the_written_evidence(pseudonymized, graph_tables):
    pairs = pd.read_parquet(pseudonymized / "pairs.parquet").sort_values("match_probability").iloc[-1]
    a, b = f"{pairs['source_l']}:{pairs['record_id_l']}", f"{pairs['source_r']}:{pairs['record_id_r']}"
    hidden = runner.invoke(app, ["explain", str(pseudonymized), a, b], terminal_width=250)
    clear = runner.invoke(app, ["explain", str(graph_tables.parent / "resolved"), a, b], terminal_width=250)
    assert hidden.exit_code == 0 and clear.exit_code == 0, hidden.output + clear.output
    assert "ps_" in hidden.output
    # Same verdict and total weight as the clear run computes from the clear values.
    assert hidden.output.strip().splitlines()[-1] == clear.output.strip().splitlines()[-1]


def test_pseudonymize_without_a_key_is_one_clear_line(small_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv(PSEUDONYM_KEY_ENV, raising=False)
    result = runner.invoke(app, ["resolve", str(small_dataset), "--out", str(tmp_path / "out"),
                                 "--config", str(small_dataset / "linkage.toml"), "--pseudonymize"])
    assert result.exit_code == 1 and PSEUDONYM_KEY_ENV in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out" / "records.parquet").exists()
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, "short")
    result = runner.invoke(app, ["resolve", str(small_dataset), "--out", str(tmp_path / "out"),
                                 "--config", str(small_dataset / "linkage.toml"), "--pseudonymize"])
    assert result.exit_code == 1 and "shorter than" in result.output and "short" not in result.output.split("shorter")[0]


def test_mask_shows_shape_not_value():
    assert mask("jane.doe@example.com") == "j…(20)"
    assert "doe" not in mask("jane.doe@example.com")
    assert mask(None) == "∅"
