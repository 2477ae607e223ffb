"""Faults between identigraph and a real Neo4j: locks held by another transaction (transient
errors the driver retries with back-off), retries running out, wrong credentials and
addresses. Every failure is one line saying what to do, and a rerun completes the work.

A server of its own, started with a 1 s lock-acquisition timeout, so a transaction kept
waiting on a lock fails with Neo4j's transient ``LockAcquisitionTimeout`` rather than
waiting for ever.
"""
from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from identigraph.cli.app import app
from identigraph.graph import local_neo4j
from identigraph.graph.connection import Neo4jSettings
from identigraph.graph.load import LoadInterrupted, graph_counts, init_schema, load_graph, table_counts
from identigraph.graph.model import NODES

pytestmark = pytest.mark.neo4j
runner = CliRunner()


@pytest.fixture(scope="module")
def lock_timeout_server(tmp_path_factory):
    state = tmp_path_factory.mktemp("neo4j-locks")
    patch = pytest.MonkeyPatch()
    patch.setenv("IDENTIGRAPH_NEO4J_DIR", str(state))
    try:
        local_neo4j.start(lock_timeout_s=1.0, heap="1g", page_cache_mb=256)
        yield local_neo4j.running_settings()
    finally:
        local_neo4j.stop()
        patch.undo()


@pytest.fixture
def server(lock_timeout_server):
    with lock_timeout_server.driver() as driver:
        with driver.session(database=lock_timeout_server.database) as session:
            session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
        init_schema(driver, lock_timeout_server.database)
    return lock_timeout_server


def customer_tables(graph_tables: Path, out: Path) -> tuple[Path, str]:
    """A table folder holding only the Customer nodes, so a load reaches them at once; and
    the key of the first customer, in the first batch."""
    (out / "nodes").mkdir(parents=True)
    (out / "edges").mkdir()
    shutil.copy(graph_tables / "nodes" / "Customer.parquet", out / "nodes" / "Customer.parquet")
    first = pd.read_parquet(out / "nodes" / "Customer.parquet").iloc[0][NODES["Customer"].key]
    return out, str(first)


class LockHolder:
    """An open write transaction holding the lock of one Customer node until released."""

    def __init__(self, settings: Neo4jSettings, key: str):
        self.driver = settings.driver()
        self.session = self.driver.session(database=settings.database)
        self.tx = self.session.begin_transaction()
        self.tx.run(f"MERGE (c:Customer {{{NODES['Customer'].key}: $key}}) SET c.held = true", key=key).consume()

    def release_after(self, seconds: float) -> threading.Thread:
        def commit_later():
            time.sleep(seconds)
            self.release()

        thread = threading.Thread(target=commit_later)
        thread.start()
        return thread

    def release(self) -> None:
        if not self.tx.closed():
            self.tx.commit()
        self.session.close()
        self.driver.close()


def test_a_lock_held_for_a_while_is_retried_with_backoff_and_the_load_completes(server, graph_tables, tmp_path):
    tables, key = customer_tables(graph_tables, tmp_path / "tables")
    holder = LockHolder(server, key)
    releaser = holder.release_after(3.0)
    started = time.monotonic()
    with server.driver() as driver:
        summary = load_graph(tables, driver, server.database, workers=1)
        releaser.join()
        assert time.monotonic() - started >= 3.0  # it waited for the lock instead of skipping the batch
        assert summary.retries >= 1
        assert graph_counts(driver, server.database)[0]["Customer"] == table_counts(tables)[0]["Customer"]
        held, _, _ = driver.execute_query(
            f"MATCH (c:Customer {{{NODES['Customer'].key}: $key}}) RETURN c.held AS held, c.sources AS sources",
            key=key, database_=server.database)
    # Both writes are there: the holder's commit and the load's properties after it.
    assert held[0]["held"] is True and held[0]["sources"] is not None


def test_retries_running_out_stop_the_load_with_one_line_and_a_rerun_completes(server, graph_tables, tmp_path,
                                                                               monkeypatch):
    tables, key = customer_tables(graph_tables, tmp_path / "tables")
    monkeypatch.setenv("IDENTIGRAPH_NEO4J_RETRY_S", "2")
    env = {"NEO4J_URI": server.uri, "NEO4J_PASSWORD": server.password, "IDENTIGRAPH_NEO4J_RETRY_S": "2"}
    holder = LockHolder(server, key)
    try:
        result = runner.invoke(app, ["load", str(tables), "--batch-size", "500"], env=env)
    finally:
        holder.release()
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert "kept refusing a batch of Customer with a transient error" in message
    assert "LockAcquisitionTimeout" in message and "run the same `identigraph load` again" in message
    assert "Traceback" not in result.output and server.password not in result.output
    with pytest.raises(LoadInterrupted):  # the library says the same to a caller, as an exception
        holder = LockHolder(server, key)
        try:
            with Neo4jSettings(server.uri, server.user, server.password).driver() as driver:
                load_graph(tables, driver, server.database, batch_size=500)
        finally:
            holder.release()
    rerun = runner.invoke(app, ["load", str(tables)], env=env)
    assert rerun.exit_code == 0, rerun.output
    with server.driver() as driver:
        assert graph_counts(driver, server.database)[0]["Customer"] == table_counts(tables)[0]["Customer"]


def test_a_transient_error_outside_the_batched_load_is_one_line_too(server, graph_tables, tmp_path):
    """`load --delta-from` deletes removed customers in a transaction of its own; when its
    retries run out the command still ends with one line, not a traceback."""
    old, key = customer_tables(graph_tables, tmp_path / "old")
    new, _ = customer_tables(graph_tables, tmp_path / "new")
    customers = pd.read_parquet(new / "nodes" / "Customer.parquet")
    customers[customers[NODES["Customer"].key].astype(str) != key].to_parquet(
        new / "nodes" / "Customer.parquet", index=False)
    env = {"NEO4J_URI": server.uri, "NEO4J_PASSWORD": server.password, "IDENTIGRAPH_NEO4J_RETRY_S": "2"}
    assert runner.invoke(app, ["load", str(old)], env=env).exit_code == 0
    holder = LockHolder(server, key)
    try:
        result = runner.invoke(app, ["load", str(new), "--delta-from", str(old)], env=env)
    finally:
        holder.release()
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert "transient error" in result.output and "run the same command again" in " ".join(result.output.split())
    rerun = runner.invoke(app, ["load", str(new), "--delta-from", str(old)], env=env)
    assert rerun.exit_code == 0, rerun.output
    with server.driver() as driver:
        assert graph_counts(driver, server.database)[0]["Customer"] == len(customers) - 1


@pytest.mark.parametrize("case", ["wrong password", "nothing listening", "unknown host", "not a bolt address"])
def test_a_wrong_password_or_address_is_one_line_without_the_password(server, graph_tables, case):
    uri = {"wrong password": server.uri, "nothing listening": "bolt://127.0.0.1:1",
           "unknown host": "bolt://no-such-host.invalid:7687", "not a bolt address": "http://localhost:7474"}[case]
    password = "not-the-password-123"
    result = runner.invoke(app, ["load", str(graph_tables), "--neo4j-uri", uri], env={"NEO4J_PASSWORD": password})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert password not in result.output and server.password not in result.output
    expected = {"wrong password": "wrong user name or password", "nothing listening": "connection refused",
                "unknown host": "cannot be resolved", "not a bolt address": "is not a Neo4j Bolt address"}[case]
    assert expected in lines[0]
