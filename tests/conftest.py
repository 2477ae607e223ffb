"""Shared fixtures. Neo4j tests always talk to a real server:

1. ``NEO4J_URI`` (+ ``NEO4J_USER``, ``NEO4J_PASSWORD``) when set;
2. otherwise the local launcher (``make neo4j-start``), started here if it is not running.

Under ``CI=true`` a missing server fails the test instead of skipping it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from identigraph.embeddings.train import TrainingConfig
from identigraph.graph import local_neo4j
from identigraph.graph.connection import Neo4jNotConfigured, Neo4jSettings, resolve_settings

IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"Neo4j is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"no Neo4j: {reason}")


@pytest.fixture(scope="session")
def neo4j_settings() -> Neo4jSettings:
    started_here = False
    try:
        settings = resolve_settings()
    except Neo4jNotConfigured:
        try:
            local_neo4j.start()
            started_here = True
            settings = resolve_settings()
        except (local_neo4j.LocalNeo4jError, Neo4jNotConfigured) as error:
            _unavailable(str(error))
    yield settings
    if started_here:
        local_neo4j.stop()


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_settings):
    driver = neo4j_settings.driver()
    try:
        driver.verify_connectivity()
    except Exception as error:  # any failure to reach the server is the same verdict
        _unavailable(f"{neo4j_settings.uri} does not answer: {type(error).__name__}: {error}")
    yield driver
    driver.close()


def clean_database(driver, database: str) -> None:
    with driver.session(database=database) as session:  # IN TRANSACTIONS needs auto-commit
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
    # Names come from the server's own catalogue; Cypher takes no parameter for a schema name.
    constraints, _, _ = driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN name", database_=database)
    for record in constraints:
        driver.execute_query(f"DROP CONSTRAINT `{record['name']}` IF EXISTS", database_=database)
    indexes, _, _ = driver.execute_query(
        "SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name", database_=database)
    for record in indexes:
        driver.execute_query(f"DROP INDEX `{record['name']}` IF EXISTS", database_=database)


@pytest.fixture(scope="module")
def neo4j_db(neo4j_driver, neo4j_settings):
    """A driver on an empty database: every test module starts from a clean state."""
    clean_database(neo4j_driver, neo4j_settings.database)
    yield neo4j_driver
    clean_database(neo4j_driver, neo4j_settings.database)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """2,000 customers written once per test session by the real generator."""
    from identigraph.synthetic import GeneratorConfig, generate_dataset

    out = tmp_path_factory.mktemp("synthetic") / "data"
    generate_dataset(GeneratorConfig(customers=2_000, seed=11, chunk_size=1_000, fraud_rate=0.02), out)
    return out


@pytest.fixture(scope="session")
def graph_tables(small_dataset, tmp_path_factory) -> Path:
    """The small data set resolved and built into graph tables (``resolved/`` beside them)."""
    from identigraph.graph.build import build_graph_tables
    from identigraph.resolution.config import load_config
    from identigraph.resolution.linker import Linker

    work = tmp_path_factory.mktemp("graph")
    Linker(load_config(small_dataset / "linkage.toml")).run([small_dataset], work / "resolved")
    build_graph_tables(work / "resolved", work / "tables", small_dataset)
    return work / "tables"


# The embedding tests and the scoring tests share one small training run.
# Full-batch whatever is installed: the tests that use it measure the embeddings, not the
# loader (test_mini_batches_recover_planted_communities_reproducibly covers that path).
SMALL_EMBEDDINGS = TrainingConfig(dim=16, hidden=16, epochs=100, seed=3, batching="full")


@pytest.fixture(scope="session")
def embedded(graph_tables, tmp_path_factory) -> Path:
    """Embeddings of ``graph_tables`` (16 dimensions), trained once per test session."""
    from identigraph.embeddings.pipeline import embed

    out = tmp_path_factory.mktemp("embeddings")
    embed(graph_tables, out, SMALL_EMBEDDINGS)
    return out
