"""Segments and risk scores written back to Neo4j, idempotently and with parameters only.

- ``(:Segment {segment_id, name, customers, …profile})`` and
  ``(:Customer)-[:IN_SEGMENT]->(:Segment)``: a customer's earlier IN_SEGMENT edges are
  replaced, and segments no customer belongs to any more are removed, so a rerun with
  another k leaves exactly the new segmentation.
- ``Customer.risk_score``, ``risk_rank``, ``risk_band``, ``risk_reasons`` (list of sentences),
  ``risk_kind`` (``supervised`` or ``anomaly``).
"""
from __future__ import annotations

from pathlib import Path

import neo4j
import pandas as pd

from identigraph.graph.connection import run_counting

SEGMENT_NODES = ("UNWIND $rows AS row MERGE (s:Segment {segment_id: row.segment_id}) "
                 "SET s += row.properties, s.name = row.name")
SEGMENT_EDGES = ("UNWIND $rows AS row MATCH (c:Customer {customer_id: row.customer_id}) "
                 "OPTIONAL MATCH (c)-[old:IN_SEGMENT]->() DELETE old "
                 "WITH DISTINCT c, row MATCH (s:Segment {segment_id: row.segment_id}) "
                 "MERGE (c)-[:IN_SEGMENT]->(s) RETURN count(c) AS n")
EMPTY_SEGMENTS = "MATCH (s:Segment) WHERE NOT (s)<-[:IN_SEGMENT]-() DETACH DELETE s"
RISK = ("UNWIND $rows AS row MATCH (c:Customer {customer_id: row.customer_id}) "
        "SET c.risk_score = row.risk_score, c.risk_rank = row.risk_rank, c.risk_band = row.risk_band, "
        "c.risk_reasons = row.risk_reasons, "
        "c.risk_kind = row.score_kind RETURN count(c) AS n")


def _write_batches(driver: neo4j.Driver, statement: str, rows: list[dict], database: str, batch_size: int) -> int:
    written = 0
    with driver.session(database=database) as session:
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            written += session.execute_write(run_counting, statement, batch)
    return written


def write_segments(driver: neo4j.Driver, directory: Path, database: str = "neo4j", batch_size: int = 5000) -> int:
    """Segments of ``directory`` (``segments.parquet``, ``segment_profiles.parquet``); returns
    how many customers of the graph were placed in a segment."""
    directory = Path(directory)
    profiles = pd.read_parquet(directory / "segment_profiles.parquet")
    nodes = [{"segment_id": p.pop("segment_id"), "name": p.pop("segment"), "properties": p}
             for p in profiles.to_dict("records")]
    with driver.session(database=database) as session:
        session.execute_write(lambda tx: tx.run(SEGMENT_NODES, rows=nodes).consume())
    members = pd.read_parquet(directory / "segments.parquet", columns=["customer_id", "segment_id"])
    written = _write_batches(driver, SEGMENT_EDGES, members.to_dict("records"), database, batch_size)
    driver.execute_query(EMPTY_SEGMENTS, database_=database)
    return written


def write_risk(driver: neo4j.Driver, directory: Path, database: str = "neo4j", batch_size: int = 5000) -> int:
    """Risk of ``directory/risk.parquet`` onto the customers; returns how many were set."""
    risk = pd.read_parquet(Path(directory) / "risk.parquet",
                           columns=["customer_id", "risk_score", "risk_rank", "risk_band", "score_kind", "risk_reasons"])
    risk["risk_reasons"] = risk["risk_reasons"].map(list)
    return _write_batches(driver, RISK, risk.to_dict("records"), database, batch_size)
