"""The tests' Neo4j is a real 5.26 server that enforces constraints and parameters."""
import neo4j
import pytest

from identigraph.graph import local_neo4j
from identigraph.graph.connection import Neo4jSettings, server_version

pytestmark = pytest.mark.neo4j


def test_server_is_neo4j_5_26(neo4j_db):
    version, edition = server_version(neo4j_db)
    assert version.startswith("5.26."), version
    assert edition in {"community", "enterprise"}


def test_uniqueness_constraint_and_parameterised_writes(neo4j_db, neo4j_settings):
    db = neo4j_settings.database
    neo4j_db.execute_query(
        "CREATE CONSTRAINT customer_id_unique IF NOT EXISTS FOR (c:Customer) REQUIRE c.customer_id IS UNIQUE",
        database_=db)
    rows = [{"id": f"C{i:03d}", "name": f"Name {i}"} for i in range(50)]
    neo4j_db.execute_query("UNWIND $rows AS row CREATE (:Customer {customer_id: row.id, name: row.name})",
                           rows=rows, database_=db)
    records, _, _ = neo4j_db.execute_query(
        "MATCH (c:Customer {customer_id: $id}) RETURN c.name AS name", id="C007", database_=db,
        routing_=neo4j.RoutingControl.READ)
    assert [r["name"] for r in records] == ["Name 7"]
    with pytest.raises(neo4j.exceptions.ConstraintError):
        neo4j_db.execute_query("CREATE (:Customer {customer_id: $id})", id="C007", database_=db)
    constraints, _, _ = neo4j_db.execute_query("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names",
                                               database_=db)
    assert "customer_id_unique" in constraints[0]["names"]


def test_clean_database_removes_data_and_schema(neo4j_db, neo4j_settings):
    # The module fixture relies on this between modules; the test above left data and a constraint.
    from tests.conftest import clean_database

    clean_database(neo4j_db, neo4j_settings.database)
    records, _, _ = neo4j_db.execute_query("MATCH (n) RETURN count(n) AS n", database_=neo4j_settings.database)
    assert records[0]["n"] == 0
    constraints, _, _ = neo4j_db.execute_query("SHOW CONSTRAINTS YIELD name RETURN count(*) AS n",
                                               database_=neo4j_settings.database)
    assert constraints[0]["n"] == 0


def test_wrong_password_is_refused(neo4j_settings):
    wrong = Neo4jSettings(uri=neo4j_settings.uri, user=neo4j_settings.user, password="not-the-password")
    with wrong.driver() as driver, pytest.raises(neo4j.exceptions.AuthError):
        driver.verify_connectivity()


def test_settings_never_show_the_password(neo4j_settings):
    assert neo4j_settings.password not in repr(neo4j_settings)


def test_local_launcher_start_is_idempotent(neo4j_settings):
    running = local_neo4j.status()
    if not running.running:
        pytest.skip("tests use a server named by NEO4J_URI, not the local launcher")
    again = local_neo4j.start()
    assert again.pid == running.pid and again.uri == running.uri


def test_local_launcher_restarts_with_its_own_password_even_if_changed_behind_its_back(tmp_path, monkeypatch):
    # A restart skips setting the password the store already has (a cold first query costs
    # seconds); one changed from Neo4j Browser must not lock the launcher out.
    monkeypatch.setenv("IDENTIGRAPH_NEO4J_DIR", str(tmp_path / "neo4j"))
    monkeypatch.delenv("NEO4J_PASSWORD", raising=False)
    try:
        first = local_neo4j.start()
        settings = local_neo4j.running_settings()
        with settings.driver() as driver:
            driver.execute_query("ALTER CURRENT USER SET PASSWORD FROM $old TO $new", old=settings.password,
                                 new="changed-in-the-browser", database_="system")
        local_neo4j.stop()
        second = local_neo4j.start()
        assert second.running and second.pid != first.pid
        assert local_neo4j.running_settings().password == settings.password
        with local_neo4j.running_settings().driver() as driver:
            driver.verify_connectivity()
    finally:
        local_neo4j.stop()
