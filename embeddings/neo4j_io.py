"""Embeddings to and graph frames from Neo4j.

Write-back sets ``Customer.embedding`` (a list of floats) in batches and creates the vector
index ``customer_embedding`` (cosine) that ``cypher/similar_customers.cypher`` queries with
``db.index.vector.queryNodes``."""
from __future__ import annotations

from pathlib import Path

import neo4j
import pandas as pd
import pyarrow.parquet as pq

from identigraph.embeddings.data import GraphFrames
from identigraph.graph.connection import run_counting

VECTOR_INDEX = "customer_embedding"


def create_vector_index(driver: neo4j.Driver, dim: int, database: str = "neo4j") -> None:
    dim = int(dim)  # Cypher takes no parameter inside index options; an int cannot inject
    driver.execute_query(
        f"CREATE VECTOR INDEX {VECTOR_INDEX} IF NOT EXISTS FOR (c:Customer) ON (c.embedding) "
        f"OPTIONS {{indexConfig: {{`vector.dimensions`: {dim}, `vector.similarity_function`: 'cosine'}}}}",
        database_=database)
    driver.execute_query("CALL db.awaitIndexes(300)", database_=database)


def write_customer_embeddings(driver: neo4j.Driver, embeddings_path: Path, database: str = "neo4j",
                              batch_size: int = 5000) -> int:
    """Set ``Customer.embedding`` for every customer row of ``embeddings.parquet``; returns
    how many customers the graph had (an id the graph lacks is skipped by MATCH and not counted)."""
    table = pq.read_table(embeddings_path, filters=[("node_type", "=", "customer")])
    ids = table["node_id"].to_pylist()
    vectors = table["embedding"].to_pylist()
    if not ids:
        return 0
    create_vector_index(driver, len(vectors[0]), database)
    written = 0
    statement = ("UNWIND $rows AS row MATCH (c:Customer {customer_id: row.id}) "
                 "CALL db.create.setNodeVectorProperty(c, 'embedding', row.vector) RETURN count(c) AS n")
    with driver.session(database=database) as session:
        for start in range(0, len(ids), batch_size):
            rows = [{"id": i, "vector": v} for i, v in zip(ids[start:start + batch_size], vectors[start:start + batch_size])]
            written += session.execute_write(run_counting, statement, rows)
    return written


def read_graph_frames_from_neo4j(driver: neo4j.Driver, database: str = "neo4j") -> GraphFrames:
    """The same frames ``read_graph_frames`` gives, read from a loaded graph."""
    def frame(query: str) -> pd.DataFrame:
        records, _, keys = driver.execute_query(query, database_=database, routing_=neo4j.RoutingControl.READ)
        return pd.DataFrame([r.values() for r in records], columns=keys)

    def times(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        for column in columns:
            df[column] = pd.to_datetime([v.to_native() if v is not None else None for v in df[column]])
        return df

    nodes = {
        "Customer": frame("MATCH (c:Customer) RETURN c.customer_id AS customer_id ORDER BY customer_id"),
        "Product": frame("MATCH (p:Product) RETURN p.product_id AS product_id, p.category AS category, "
                         "p.price AS price ORDER BY product_id"),
        "Device": frame("MATCH (d:Device) RETURN d.device_id AS device_id, d.device_type AS device_type, "
                        "d.sessions AS sessions ORDER BY device_id"),
    }
    records = frame("MATCH (r:SourceRecord) RETURN r.record_key AS record_key, r.source AS source")
    purchased = times(frame("MATCH (c:Customer)-[b:PURCHASED]->(p:Product) RETURN c.customer_id AS start, "
                            "p.product_id AS end, b.orders AS orders, b.amount AS amount, b.first_at AS first_at, "
                            "b.last_at AS last_at ORDER BY start, end"), ["first_at", "last_at"])
    used = times(frame("MATCH (c:Customer)-[u:USED_DEVICE]->(d:Device) RETURN c.customer_id AS start, "
                       "d.device_id AS end, u.sessions AS sessions, u.first_seen AS first_seen, "
                       "u.last_seen AS last_seen ORDER BY start, end"), ["first_seen", "last_seen"])
    resolved = frame("MATCH (r:SourceRecord)-[:RESOLVED_TO]->(c:Customer) RETURN r.record_key AS start, "
                     "c.customer_id AS end")
    return GraphFrames(nodes, {"PURCHASED": purchased, "USED_DEVICE": used}, records, resolved)
