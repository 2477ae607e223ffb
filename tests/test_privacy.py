"""Privacy by design: a pseudonymized run links as a clear one does, and neither its
artifacts, its graph tables nor the graph in the real Neo4j hold a single PII value."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from identigraph.cli.app import app
from identigraph.graph.build import build_graph_tables
from identigraph.graph.load import load_graph
from identigraph.resolution.privacy import PII_RECORD_COLUMNS, PSEUDONYM_KEY_ENV, mask

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


def test_error_messages_mask_the_values_they_quote():
    from identigraph.graph.cookbook import Parameter, QueryError

    with pytest.raises(QueryError) as caught:
        Parameter("limit", "int", None, "rows").parse("jane.doe@example.com")
    assert "jane" not in str(caught.value) and "j…(20)" in str(caught.value)


def _copy_run(graph_tables: Path, tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    resolved, tables = tmp_path / "resolved", tmp_path / "tables"
    shutil.copytree(graph_tables.parent / "resolved", resolved)
    shutil.copytree(graph_tables, tables)
    return resolved, tables


def _own_pii(resolved: Path, keys: set[str]) -> set[str]:
    """PII values of these records that no other record holds in any column: a shared
    household phone is the other person's data as well, and so is "emma", the display form
    of one record's given name that is the comparison key of other people's given names."""
    records = pd.read_parquet(resolved / "records.parquet")
    key = records["source"] + ":" + records["record_id"]
    mine = key.isin(keys)
    columns = list(PII_RECORD_COLUMNS)
    own = set(records.loc[mine, columns].stack().dropna())
    others = set(records.loc[~mine, columns].stack().dropna())
    return {v for v in own - others if len(str(v)) >= 4} - set(records["record_id"])


def _customer_with_most_records(entities: pd.DataFrame) -> str:
    """Ties broken by id: ``value_counts`` sorts with numpy's quicksort, whose order of equal
    counts depends on the CPU's SIMD instructions (AVX-512 and AVX2 machines picked
    different customers)."""
    counts = entities["entity_id"].value_counts().rename("n").rename_axis("entity_id").reset_index()
    return counts.sort_values(["n", "entity_id"], ascending=[False, True])["entity_id"].iloc[0]


def _files_holding(folder: Path, secrets: set[str]) -> list[str]:
    return sorted({p.name for p in folder.rglob("*") if p.is_file()
                   for text in strings_in_artifact(p) if text in secrets or any(s in text for s in secrets
                                                                                 if len(text) > 64)})


@pytest.mark.neo4j
def test_forget_a_customer_everywhere_and_keep_them_forgotten(graph_tables, small_dataset, tmp_path, neo4j_db,
                                                              neo4j_settings):
    resolved, tables = _copy_run(graph_tables, tmp_path)
    entities = pd.read_parquet(resolved / "entities.parquet")
    customer = _customer_with_most_records(entities)
    keys = set(entities.loc[entities["entity_id"] == customer, "source"] + ":"
               + entities.loc[entities["entity_id"] == customer, "record_id"])
    secrets = _own_pii(resolved, keys)
    assert len(keys) >= 3 and len(secrets) >= 5
    assert _files_holding(resolved, secrets) and _files_holding(tables, secrets)  # the search finds them before
    load_graph(tables, neo4j_db, neo4j_settings.database, replace=True)
    env = {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
           "NEO4J_PASSWORD": neo4j_settings.password, "NEO4J_DATABASE": neo4j_settings.database}
    result = runner.invoke(app, ["forget", str(resolved), "--customer", customer, "--tables", str(tables), "--neo4j"],
                           env=env)
    assert result.exit_code == 0, result.output
    assert f"{len(keys)} record(s) erased" in result.output

    assert _files_holding(resolved, secrets) == [] and _files_holding(tables, secrets) == []
    with neo4j_db.session(database=neo4j_settings.database, default_access_mode="READ") as session:
        values = session.run("MATCH (n) UNWIND keys(n) AS k WITH n[k] AS v WHERE v IS :: STRING RETURN v").value()
        erased = session.run("MATCH (c:Customer {customer_id: $id}) RETURN c.erasure_request AS r, "
                             "count { (c)<-[:RESOLVED_TO]-() } AS records, count { (c)-[:PURCHASED]->() } AS bought",
                             id=customer).single()
    assert not secrets & set(values)
    assert erased["r"] and erased["records"] == len(keys)  # structure and history stay, the PII goes
    # The audit entry names the request and ids, never a value.
    entry = json.loads((resolved / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["command"] == "forget" and entry["options"]["customer_id"] == customer
    assert not any(s in json.dumps(entry) for s in secrets)

    # A later run into the same folder reads forgotten.jsonl: the records are quarantined, not linked.
    rerun = runner.invoke(app, ["resolve", str(small_dataset), "--out", str(resolved),
                                "--config", str(small_dataset / "linkage.toml")])
    assert rerun.exit_code == 0, rerun.output
    quarantine = pd.read_parquet(resolved / "quarantine.parquet")
    held = quarantine[quarantine["reason"].str.startswith("erased by forget request")]
    assert set(held["source"] + ":" + held["record_id"]) == keys
    assert _files_holding(resolved, secrets) == []
    run = json.loads((resolved / "run.json").read_text())
    assert run["read"] == run["records"] + run["quarantined"]
    assert [json.loads(line)["command"] for line in (resolved / "audit.jsonl").read_text().splitlines()] == \
        ["forget", "resolve"]


def test_forget_one_record_keeps_the_customers_other_records(graph_tables, tmp_path):
    from identigraph.graph.erasure import erase_from_graph_tables
    from identigraph.resolution.erasure import ErasureError, erase_from_resolution

    resolved, tables = _copy_run(graph_tables, tmp_path)
    golden = pd.read_parquet(resolved / "golden.parquet")
    # A customer whose e-mail came from one record among several.
    row = golden[(golden["record_count"] >= 2) & golden["email"].notna()].iloc[0]
    record = row["email_from"]
    erasure = erase_from_resolution(resolved, record=record)
    erase_from_graph_tables(tables, resolved, erasure)
    assert erasure.scope == "record" and erasure.record_keys == [record] and "email" in erasure.cleared_attributes
    records = pd.read_parquet(resolved / "records.parquet")
    key = records["source"] + ":" + records["record_id"]
    assert records.loc[key == record, list(PII_RECORD_COLUMNS)].isna().all(axis=None)
    others = pd.read_parquet(resolved / "entities.parquet")
    others = set(others.loc[others["entity_id"] == row["entity_id"], "source"] + ":"
                 + others.loc[others["entity_id"] == row["entity_id"], "record_id"]) - {record}
    assert records.loc[key.isin(others), "first_name"].notna().any()
    customer = pd.read_parquet(tables / "nodes" / "Customer.parquet").set_index("customer_id").loc[row["entity_id"]]
    assert pd.isna(customer["email"]) and customer["erasure_request"] == erasure.request_id
    # Attributes another record supplied stay.
    kept = [a for a in ("first_name", "last_name") if row[f"{a}_from"] != record]
    assert all(customer[a] == row[a] for a in kept)
    with pytest.raises(ErasureError, match="SOURCE:RECORD_ID"):
        erase_from_resolution(resolved, record="nowhere:0")
    with pytest.raises(ErasureError, match="exactly one"):
        erase_from_resolution(resolved)


def test_every_command_appends_an_audit_entry_with_hashed_inputs(small_dataset, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["resolve", str(small_dataset / "crm.csv"), str(small_dataset / "web_accounts.jsonl"),
                                 "--out", str(out), "--config", str(small_dataset / "linkage.toml")])
    assert result.exit_code == 0, result.output
    entry = json.loads((out / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["command"] == "resolve" and entry["user"] and entry["at"].endswith("+00:00")
    inputs = {Path(i["path"]).name: i["sha256"] for i in entry["inputs"]}
    from identigraph.cli.audit import file_digest

    assert inputs["crm.csv"] == file_digest(small_dataset / "crm.csv")
    assert {Path(o["path"]).name for o in entry["outputs"]} >= {"entities.parquet", "records.parquet", "golden.parquet"}
    assert "audit.jsonl" not in {Path(o["path"]).name for o in entry["outputs"]}
