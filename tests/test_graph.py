"""The knowledge graph on the real Neo4j: schema, table build, idempotent and interrupted
loads, the cookbook against the generator's truth, read-only ad-hoc queries."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from identigraph.cli.app import app
from identigraph.graph.build import build_graph_tables
from identigraph.graph.cookbook import ReadOnlyViolation, cookbook, run_cookbook_query, run_read_query
from identigraph.graph.load import graph_counts, init_schema, load_graph, schema_statements, table_counts
from identigraph.graph.model import EDGE_TYPES, NODE_TYPES, NODES

pytestmark = pytest.mark.neo4j
runner = CliRunner()


def snapshot(driver, database: str) -> str:
    """A digest of every model node (key, properties) and relationship (ends, properties)."""
    digest = hashlib.sha256()
    for node in NODE_TYPES:
        records, _, _ = driver.execute_query(
            f"MATCH (n:{node.label}) RETURN n.{node.key} AS key, properties(n) AS p ORDER BY key", database_=database)
        for r in records:
            digest.update(json.dumps([node.label, r["key"], r["p"]], sort_keys=True, default=str).encode())
    for edge in EDGE_TYPES:
        start, end = NODES[edge.start].key, NODES[edge.end].key
        records, _, _ = driver.execute_query(
            f"MATCH (a)-[r:{edge.type}]->(b) RETURN a.{start} AS s, b.{end} AS e, properties(r) AS p ORDER BY s, e",
            database_=database)
        for r in records:
            digest.update(json.dumps([edge.type, r["s"], r["e"], r["p"]], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def wipe(driver, database: str) -> None:
    with driver.session(database=database) as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()


def test_schema_has_a_uniqueness_constraint_per_node_key_and_reapplies(neo4j_db, neo4j_settings):
    init_schema(neo4j_db, neo4j_settings.database)
    init_schema(neo4j_db, neo4j_settings.database)  # IF NOT EXISTS: a rerun is a no-op
    records, _, _ = neo4j_db.execute_query(
        "SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties WHERE type = 'UNIQUENESS' "
        "RETURN labelsOrTypes[0] AS label, properties[0] AS key", database_=neo4j_settings.database)
    constraints = {(r["label"], r["key"]) for r in records}
    assert {(n.label, n.key) for n in NODE_TYPES} <= constraints
    assert len(schema_statements()) == len(constraints) + 4  # the rest are the four indexes


def test_tables_account_for_every_event_and_edges_end_at_nodes(graph_tables, small_dataset):
    summary = json.loads((graph_tables / "graph.json").read_text())
    orders = pd.read_parquet(small_dataset / "orders.parquet")
    sessions = pd.read_parquet(small_dataset / "sessions.parquet")
    quarantine = pd.read_parquet(graph_tables / "quarantine.parquet")
    for name, frame in (("orders", orders), ("sessions", sessions)):
        account = summary["events"][name]
        assert account["read"] == len(frame) == account["used"] + account["quarantined"]
        assert account["quarantined"] == int((quarantine["table"] == name).sum())
    purchased = pd.read_parquet(graph_tables / "edges" / "PURCHASED.parquet")
    assert purchased["orders"].sum() == summary["events"]["orders"]["used"]
    keys = {n.label: set(pd.read_parquet(graph_tables / "nodes" / f"{n.label}.parquet")[n.key]) for n in NODE_TYPES}
    for edge in EDGE_TYPES:
        frame = pd.read_parquet(graph_tables / "edges" / f"{edge.type}.parquet")
        assert set(frame["start"]) <= keys[edge.start], edge.type
        assert set(frame["end"]) <= keys[edge.end], edge.type


def test_orders_of_unresolved_records_are_quarantined_with_a_reason(graph_tables, small_dataset, tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    orders = pd.read_parquet(small_dataset / "orders.parquet").head(50).copy()
    orders.loc[orders.index[:3], "record_id"] = "no-such-record"
    orders.loc[orders.index[3], "product_id"] = "P-missing"
    orders.to_parquet(events / "orders.parquet")
    pd.read_csv(small_dataset / "products.csv").to_csv(events / "products.csv", index=False)
    summary = build_graph_tables(graph_tables.parent / "resolved", tmp_path / "tables", events)
    assert (summary.events["orders"].used, summary.events["orders"].quarantined) == (46, 4)
    reasons = pd.read_parquet(tmp_path / "tables" / "quarantine.parquet")["reason"].tolist()
    assert sum("record not among the resolved" in r for r in reasons) == 3
    assert sum("product_id not in products" in r for r in reasons) == 1


def test_load_gives_the_table_counts_and_a_second_load_changes_nothing(graph_tables, neo4j_db, neo4j_settings):
    database = neo4j_settings.database
    wipe(neo4j_db, database)
    load_graph(graph_tables, neo4j_db, database, batch_size=2000)
    node_counts, edge_counts = table_counts(graph_tables)
    assert graph_counts(neo4j_db, database) == (
        {n.label: node_counts.get(n.label, 0) for n in NODE_TYPES},
        {e.type: edge_counts.get(e.type, 0) for e in EDGE_TYPES})
    first = snapshot(neo4j_db, database)
    load_graph(graph_tables, neo4j_db, database, batch_size=3000)
    assert snapshot(neo4j_db, database) == first


def test_a_load_killed_half_way_and_rerun_equals_a_clean_load(graph_tables, neo4j_db, neo4j_settings):
    database = neo4j_settings.database
    wipe(neo4j_db, database)
    load_graph(graph_tables, neo4j_db, database)
    clean = snapshot(neo4j_db, database)
    clean_nodes, clean_relationships = graph_counts(neo4j_db, database)
    expected = sum(clean_nodes.values()) + sum(clean_relationships.values())
    wipe(neo4j_db, database)
    env = {**os.environ, "NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
           "NEO4J_PASSWORD": neo4j_settings.password, "NEO4J_DATABASE": database}
    process = subprocess.Popen([sys.executable, "-m", "identigraph.cli.app", "load", str(graph_tables), "--batch-size", "50"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sum(graph_counts(neo4j_db, database)[0].values()) > 1000:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    nodes, relationships = graph_counts(neo4j_db, database)
    assert 0 < sum(nodes.values()) + sum(relationships.values()) < expected, "the kill came too late"
    assert snapshot(neo4j_db, database) != clean
    result = runner.invoke(app, ["load", str(graph_tables), "--neo4j-uri", neo4j_settings.uri],
                           env={"NEO4J_PASSWORD": neo4j_settings.password, "NEO4J_USER": neo4j_settings.user,
                                "NEO4J_DATABASE": database})
    assert result.exit_code == 0, result.output
    assert snapshot(neo4j_db, database) == clean


def test_a_server_stopped_during_a_load_gives_one_clear_line_and_a_rerun_completes(graph_tables, tmp_path,
                                                                                     monkeypatch):
    from identigraph.graph import local_neo4j

    # A second local server of its own, to be stopped under the load.
    monkeypatch.setenv("IDENTIGRAPH_NEO4J_DIR", str(tmp_path / "neo4j"))
    try:
        local_neo4j.start()
        settings = local_neo4j.running_settings()
        env = {**os.environ, "NEO4J_URI": settings.uri, "NEO4J_USER": settings.user,
               "NEO4J_PASSWORD": settings.password, "NEO4J_DATABASE": settings.database}
        process = subprocess.Popen([sys.executable, "-m", "identigraph.cli.app", "load", str(graph_tables), "--batch-size", "50"],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   cwd=Path(__file__).resolve().parents[1])
        with settings.driver() as driver:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and sum(graph_counts(driver, settings.database)[0].values()) < 500:
                time.sleep(0.05)
        local_neo4j.stop()
        output, _ = process.communicate(timeout=180)  # after the driver's own retries (30 s)
        assert process.returncode == 1, output
        assert "Neo4j stopped answering while loading" in output and "run the same `identigraph load` again" in output
        assert "Traceback" not in output
        local_neo4j.start()
        settings = local_neo4j.running_settings()
        result = runner.invoke(app, ["load", str(graph_tables)], env={"NEO4J_URI": settings.uri,
                                                                       "NEO4J_PASSWORD": settings.password})
        assert result.exit_code == 0, result.output
        with settings.driver() as driver:
            assert graph_counts(driver, settings.database) == table_counts(graph_tables)
    finally:
        local_neo4j.stop()


@pytest.fixture(scope="module")
def loaded(graph_tables, neo4j_db, neo4j_settings):
    wipe(neo4j_db, neo4j_settings.database)
    load_graph(graph_tables, neo4j_db, neo4j_settings.database)
    return neo4j_db


def _entities(graph_tables: Path) -> pd.DataFrame:
    return pd.read_parquet(graph_tables.parent / "resolved" / "entities.parquet")


def test_customer_360_lists_exactly_the_source_records_of_a_known_customer(loaded, graph_tables, small_dataset,
                                                                           neo4j_settings):
    truth = pd.read_parquet(small_dataset / "truth" / "records.parquet")
    entities = _entities(graph_tables).merge(truth, on=["source", "record_id"])
    # A true customer with records in three or more channels that resolution kept whole.
    per_customer = entities.groupby("customer_id").agg(records=("record_id", "size"), entities=("entity_id", "nunique"))
    whole = per_customer[(per_customer["records"] >= 3) & (per_customer["entities"] == 1)].index
    customer = entities[entities["customer_id"] == whole[0]]
    columns, rows = run_cookbook_query(loaded, "customer_360", {"customer_id": customer["entity_id"].iloc[0]},
                                       neo4j_settings.database)
    assert len(rows) == 1
    listed = {r["record_key"] for r in rows[0]["records"]}
    assert listed == set(customer["source"] + ":" + customer["record_id"])
    orders = pd.read_parquet(small_dataset / "orders.parquet")
    placed = orders.merge(customer[["source", "record_id"]], on=["source", "record_id"])
    assert sum(p["orders"] for p in rows[0]["purchases"]) == len(placed)


def test_why_merged_returns_the_pairs_inside_the_customer(loaded, graph_tables, neo4j_settings):
    matched = pd.read_parquet(graph_tables / "edges" / "MATCHED.parquet")
    entities = _entities(graph_tables)
    key_to_entity = dict(zip(entities["source"] + ":" + entities["record_id"], entities["entity_id"]))
    customer = key_to_entity[matched["start"].iloc[0]]
    _, rows = run_cookbook_query(loaded, "why_merged", {"customer_id": customer}, neo4j_settings.database)
    expected = matched[matched["start"].map(key_to_entity) == customer]
    assert {(r["record_a"], r["record_b"]) for r in rows} == set(zip(expected["start"], expected["end"]))
    assert rows == sorted(rows, key=lambda r: -r["match_weight"])


def test_shared_devices_finds_the_fraud_rings(loaded, graph_tables, small_dataset, neo4j_settings):
    _, rows = run_cookbook_query(loaded, "shared_devices", {"min_customers": "3", "limit": "50"},
                                 neo4j_settings.database)
    assert rows
    truth = pd.read_parquet(small_dataset / "truth" / "records.parquet")
    customers = pd.read_parquet(small_dataset / "truth" / "customers.parquet")
    entity_truth = _entities(graph_tables).merge(truth, on=["source", "record_id"]).merge(customers, on="customer_id")
    ring_of_entity = entity_truth.groupby("entity_id")["ring_id"].first()
    # Devices shared by three or more customers with as many surnames: ring devices.
    ringlike = [r for r in rows if r["distinct_surnames"] == r["customers"]]
    assert ringlike
    for row in ringlike:
        rings = ring_of_entity.reindex(row["customer_ids"]).dropna()
        assert len(rings) >= 0.8 * row["customers"] and rings.nunique() == 1, row


def test_households_and_top_spenders_agree_with_the_tables(loaded, graph_tables, small_dataset, neo4j_settings):
    _, rows = run_cookbook_query(loaded, "households", {"limit": "10"}, neo4j_settings.database)
    has_address = pd.read_parquet(graph_tables / "edges" / "HAS_ADDRESS.parquet")
    sizes = has_address.groupby("end")["start"].nunique()
    assert rows and all(r["customers"] == sizes[r["address_key"]] >= 2 for r in rows)
    assert [r["customers"] for r in rows] == sorted((r["customers"] for r in rows), reverse=True)
    assert rows[0]["customers"] == sizes.max()

    products = pd.read_csv(small_dataset / "products.csv")
    purchased = pd.read_parquet(graph_tables / "edges" / "PURCHASED.parquet").merge(
        products, left_on="end", right_on="product_id")
    category = purchased["category"].mode().iloc[0]
    spend = purchased[purchased["category"] == category].groupby("start")["amount"].sum().sort_values(ascending=False)
    _, rows = run_cookbook_query(loaded, "top_customers_by_category", {"category": category, "limit": "5"},
                                 neo4j_settings.database)
    assert [r["customer_id"] for r in rows][:1] == [spend.index[0]]
    assert rows[0]["spend"] == pytest.approx(spend.iloc[0], abs=0.01)


@pytest.mark.parametrize("name", sorted(cookbook()))
def test_every_cookbook_query_runs(loaded, graph_tables, neo4j_settings, name):
    entities = _entities(graph_tables)
    customer = entities.loc[entities["cluster_size"] > 1, "entity_id"].iloc[0]  # a merge to explain
    given = {"customer_id": customer, "category": "electronics"}
    query = cookbook()[name]
    params = {p.name: given[p.name] for p in query.parameters if p.default is None}
    columns, rows = run_cookbook_query(loaded, name, params, neo4j_settings.database)
    assert columns
    if name in ("segment_summary", "top_risk_customers", "similar_customers", "risky_rings"):
        assert rows == []  # the stages that feed them (embed, segment, score) have not run on this graph
    else:
        assert rows, name


def test_ad_hoc_cypher_is_read_only(loaded, neo4j_settings):
    columns, rows = run_read_query(loaded, "MATCH (c:Customer) RETURN count(c) AS n", database=neo4j_settings.database)
    assert rows[0]["n"] > 0
    with pytest.raises(ReadOnlyViolation):
        run_read_query(loaded, "CREATE (:Customer {customer_id: $id})", {"id": "intruder"}, neo4j_settings.database)
    result = runner.invoke(app, ["query", "--cypher", "MATCH (c:Customer) SET c.hacked = true",
                                 "--neo4j-uri", neo4j_settings.uri],
                           env={"NEO4J_PASSWORD": neo4j_settings.password, "NEO4J_DATABASE": neo4j_settings.database})
    assert result.exit_code == 1
    assert "read-only" in result.output
    records, _, _ = loaded.execute_query("MATCH (c:Customer) WHERE c.hacked OR c.customer_id = 'intruder' "
                                         "RETURN count(c) AS n", database_=neo4j_settings.database)
    assert records[0]["n"] == 0


def test_cli_query_formats_and_parameter_errors(loaded, graph_tables, neo4j_settings):
    env = {"NEO4J_PASSWORD": neo4j_settings.password, "NEO4J_DATABASE": neo4j_settings.database}
    customer = _entities(graph_tables)["entity_id"].iloc[0]
    result = runner.invoke(app, ["query", "cross_channel_journey", "--param", f"customer_id={customer}",
                                 "--format", "json", "--neo4j-uri", neo4j_settings.uri], env=env)
    assert result.exit_code == 0, result.output
    assert {r["channel"] for r in json.loads(result.stdout)}
    missing = runner.invoke(app, ["query", "customer_360", "--neo4j-uri", neo4j_settings.uri], env=env)
    assert missing.exit_code == 1 and "needs --param customer_id" in missing.output
    unknown = runner.invoke(app, ["query", "no_such_query", "--neo4j-uri", neo4j_settings.uri], env=env)
    assert unknown.exit_code == 1 and "customer_360" in unknown.output


def test_networkx_groups_of_shared_devices_and_phones_are_rings_or_households(graph_tables, small_dataset):
    from identigraph.graph.networkx_view import shared_identifier_groups

    groups = shared_identifier_groups(graph_tables)
    assert groups and all(len(g) >= 3 for g in groups)
    truth = pd.read_parquet(small_dataset / "truth" / "records.parquet")
    customers = pd.read_parquet(small_dataset / "truth" / "customers.parquet")
    entity = _entities(graph_tables).merge(truth, on=["source", "record_id"]).merge(customers, on="customer_id")
    ring = entity.groupby("entity_id")["ring_id"].first()
    household = entity.groupby("entity_id")["household_id"].first()
    # Every ring of three or more resolved customers shows up inside one group.
    rings = ring.dropna()
    for ring_id, members in rings.groupby(rings).groups.items():
        if len(members) >= 3:
            assert any(set(members) <= g for g in groups), ring_id
    # and each group is mostly one ring or one household.
    for group in groups:
        keys = pd.concat([ring.reindex(list(group)).dropna().astype(str) + "r",
                          household.reindex(list(group)).dropna().astype(str) + "h"])
        assert keys.value_counts().iloc[0] >= 0.5 * len(group), group


def test_replace_removes_what_other_data_left_and_keeps_other_labels(graph_tables, neo4j_db, neo4j_settings):
    database = neo4j_settings.database
    wipe(neo4j_db, database)
    load_graph(graph_tables, neo4j_db, database)
    clean = snapshot(neo4j_db, database)
    neo4j_db.execute_query("CREATE (:Customer {customer_id: $id}), (:AnalystNote {text: $text})",
                           id="left-over", text="keep me", database_=database)
    load_graph(graph_tables, neo4j_db, database)
    assert snapshot(neo4j_db, database) != clean  # a plain load adds and updates, deletes nothing
    load_graph(graph_tables, neo4j_db, database, replace=True)
    assert snapshot(neo4j_db, database) == clean
    records, _, _ = neo4j_db.execute_query("MATCH (n:AnalystNote) RETURN count(n) AS n", database_=database)
    assert records[0]["n"] == 1


def test_bulk_import_gives_exactly_the_graph_a_merge_load_gives(graph_tables, neo4j_db, neo4j_settings, tmp_path,
                                                                monkeypatch):
    from identigraph.graph import local_neo4j
    from identigraph.graph.bulk_import import bulk_import

    wipe(neo4j_db, neo4j_settings.database)
    load_graph(graph_tables, neo4j_db, neo4j_settings.database)
    merged = snapshot(neo4j_db, neo4j_settings.database)
    # A second local server of its own: the import stops and restarts the server it writes to.
    monkeypatch.setenv("IDENTIGRAPH_NEO4J_DIR", str(tmp_path / "neo4j"))
    try:
        summary = bulk_import(graph_tables)
        settings = local_neo4j.running_settings()
        with settings.driver() as driver:
            assert snapshot(driver, settings.database) == merged
            assert graph_counts(driver, settings.database) == table_counts(graph_tables)
            records, _, _ = driver.execute_query(
                "SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties WHERE type = 'UNIQUENESS' "
                "RETURN labelsOrTypes[0] AS label, properties[0] AS key", database_=settings.database)
            assert {(n.label, n.key) for n in NODE_TYPES} <= {(r["label"], r["key"]) for r in records}
    finally:
        local_neo4j.stop()
    assert summary.total == sum(table_counts(graph_tables)[0].values()) + sum(table_counts(graph_tables)[1].values())
