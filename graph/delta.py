"""Delta loads: what changed between two builds of the graph tables, applied to Neo4j.

``identigraph load NEW_TABLES --delta-from OLD_TABLES`` (after an incremental resolve and a
graph build) compares the tables row by row: a node is keyed by its key, a relationship by
its type and two ends, and a row is changed when any of its values differs. Removed
relationships are deleted, removed nodes detached and deleted (a customer merged into
another), and the new and changed rows go through the ordinary MERGE load. Only the
customers, records and identifiers the batch touched are written; the graph that results
is the graph a full load of the new tables gives (tested by digest).
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import neo4j
import pandas as pd

from identigraph.graph.load import LoadSummary, load_graph, table_files
from identigraph.graph.model import EDGES, NODES


@dataclass
class DeltaSummary:
    upserted: dict[str, int] = field(default_factory=dict)  # table -> new or changed rows written
    deleted: dict[str, int] = field(default_factory=dict)  # table -> rows removed
    unchanged: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    load: LoadSummary | None = None


def _fingerprints(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One hash per row over ``columns`` (missing ones as null); lists and timestamps by their text."""
    text = pd.DataFrame({c: (frame[c].astype(str) if c in frame else "None") for c in columns}, index=frame.index)
    return pd.util.hash_pandas_object(text, index=False)


def table_delta(old: pd.DataFrame | None, new: pd.DataFrame, key_columns: list[str]
                ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(new or changed rows of ``new``, keys of ``old`` rows gone from ``new``, unchanged count)."""
    if old is None or old.empty:
        return new, pd.DataFrame(columns=key_columns), 0
    columns = sorted(set(old.columns) | set(new.columns))
    old_index = pd.MultiIndex.from_frame(old[key_columns].astype(str))
    new_index = pd.MultiIndex.from_frame(new[key_columns].astype(str))
    old_print = pd.Series(_fingerprints(old, columns).to_numpy(), index=old_index)
    new_print = pd.Series(_fingerprints(new, columns).to_numpy(), index=new_index)
    same = new_print.reindex(new_index).to_numpy() == old_print.reindex(new_index).to_numpy()
    removed = old[~old_index.isin(new_index)][key_columns]
    return new[~same], removed, int(same.sum())


def load_delta(old_tables: Path, new_tables: Path, driver: neo4j.Driver, database: str = "neo4j",
               batch_size: int = 5000, progress=None) -> DeltaSummary:
    started = time.perf_counter()
    summary = DeltaSummary()
    old_nodes, old_edges = table_files(old_tables)
    new_nodes, new_edges = table_files(new_tables)
    removed_nodes: dict[str, list[str]] = {}
    removed_edges: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        delta_dir = Path(tmp)
        (delta_dir / "nodes").mkdir()
        (delta_dir / "edges").mkdir()
        for label, path in new_nodes.items():
            key = NODES[label].key
            old = pd.read_parquet(old_nodes[label]) if label in old_nodes else None
            changed, removed, unchanged = table_delta(old, pd.read_parquet(path), [key])
            changed.to_parquet(delta_dir / "nodes" / f"{label}.parquet", index=False)
            removed_nodes[label] = removed[key].astype(str).tolist()
            summary.upserted[label], summary.deleted[label], summary.unchanged[label] = (
                len(changed), len(removed), unchanged)
        for edge_type, path in new_edges.items():
            old = pd.read_parquet(old_edges[edge_type]) if edge_type in old_edges else None
            changed, removed, unchanged = table_delta(old, pd.read_parquet(path), ["start", "end"])
            changed.to_parquet(delta_dir / "edges" / f"{edge_type}.parquet", index=False)
            removed_edges[edge_type] = removed.astype(str).to_dict("records")
            summary.upserted[edge_type], summary.deleted[edge_type], summary.unchanged[edge_type] = (
                len(changed), len(removed), unchanged)

        def delete(tx: neo4j.ManagedTransaction) -> None:
            # Labels, types and keys are graph.model's constants; the values are parameters.
            for edge_type, rows in removed_edges.items():
                edge = EDGES[edge_type]
                start, end = NODES[edge.start].key, NODES[edge.end].key
                for i in range(0, len(rows), batch_size):
                    tx.run(f"UNWIND $rows AS row MATCH (a:{edge.start} {{{start}: row.start}})"
                           f"-[r:{edge_type}]->(b:{edge.end} {{{end}: row.end}}) DELETE r",
                           rows=rows[i:i + batch_size]).consume()
            for label, keys in removed_nodes.items():
                for i in range(0, len(keys), batch_size):
                    tx.run(f"UNWIND $keys AS key MATCH (n:{label} {{{NODES[label].key}: key}}) DETACH DELETE n",
                           keys=keys[i:i + batch_size]).consume()

        with driver.session(database=database) as session:
            session.execute_write(delete)
        summary.load = load_graph(delta_dir, driver, database, batch_size, progress=progress)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary
