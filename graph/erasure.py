"""The right to erasure on the graph: the tables of ``identigraph graph build`` and Neo4j.

Applies an ``Erasure`` that ``resolution.erasure`` made on the resolution artifacts: the
customer's erased golden attributes and its erased records' PII are removed; its identifier
edges (HAS_EMAIL, HAS_PHONE, HAS_ADDRESS) are rebuilt from the records it has left, and
identifier nodes nobody holds any more are deleted (their key is the PII value itself). The
customer keeps its id, orders, devices and scores; ``erased_at`` and ``erasure_request`` say
what happened, without PII.
"""
from __future__ import annotations

from pathlib import Path

import neo4j
import pandas as pd

from identigraph.graph.build import identifier_edges
from identigraph.graph.model import EDGES, NODES
from identigraph.resolution.erasure import Erasure, write_parquet_atomically
from identigraph.resolution.ingest import customer_of_record, record_keys

# SourceRecord properties that are PII (graph.build takes them from the standardised record).
SOURCE_RECORD_PII = ("first_name", "last_name", "date_of_birth", "email", "phone", "postcode", "street", "city")
IDENTIFIER_EDGES = ("HAS_EMAIL", "HAS_PHONE", "HAS_ADDRESS")


def remaining_identifier_edges(resolved_dir: Path, erasure: Erasure) -> dict[str, pd.DataFrame]:
    """The customer's identifier edges from its records after the erasure."""
    resolved_dir = Path(resolved_dir)
    entities = pd.read_parquet(resolved_dir / "entities.parquet")
    records = pd.read_parquet(resolved_dir / "records.parquet",
                              columns=["source", "record_id", "email", "phone", "street", "postcode"])
    entity_of = customer_of_record(entities)
    records["customer_id"] = record_keys(records["source"], records["record_id"]).map(entity_of)
    return identifier_edges(records[records["customer_id"] == erasure.customer_id])


def erase_from_graph_tables(tables_dir: Path, resolved_dir: Path, erasure: Erasure) -> list[str]:
    """Rewrites the affected tables; returns their paths."""
    tables_dir = Path(tables_dir)
    written = []
    customers_path = tables_dir / "nodes" / "Customer.parquet"
    customers = pd.read_parquet(customers_path)
    row = customers["customer_id"] == erasure.customer_id
    customers.loc[row, [a for a in erasure.cleared_attributes if a in customers]] = None
    customers.loc[row, "erasure_request"] = erasure.request_id
    customers.loc[row, "erased_at"] = erasure.at
    write_parquet_atomically(customers, customers_path)
    written.append(str(customers_path))

    source_path = tables_dir / "nodes" / "SourceRecord.parquet"
    source_records = pd.read_parquet(source_path)
    hit = source_records["record_key"].isin(erasure.record_keys)
    source_records.loc[hit, [c for c in SOURCE_RECORD_PII if c in source_records]] = None
    write_parquet_atomically(source_records, source_path)
    written.append(str(source_path))

    remaining = remaining_identifier_edges(resolved_dir, erasure)
    for edge_type in IDENTIFIER_EDGES:
        path = tables_dir / "edges" / f"{edge_type}.parquet"
        edges = pd.read_parquet(path)
        edges = pd.concat([edges[edges["start"] != erasure.customer_id], remaining[edge_type]], ignore_index=True)
        edges = edges.sort_values(["start", "end"]).reset_index(drop=True)
        write_parquet_atomically(edges, path)
        label = EDGES[edge_type].end
        node_path = tables_dir / "nodes" / f"{label}.parquet"
        nodes = pd.read_parquet(node_path)
        nodes = nodes[nodes[NODES[label].key].isin(edges["end"])].reset_index(drop=True)
        write_parquet_atomically(nodes, node_path)
        written += [str(path), str(node_path)]
    return written


def erase_from_neo4j(driver: neo4j.Driver, resolved_dir: Path, erasure: Erasure, database: str = "neo4j") -> int:
    """One transaction; returns the number of identifier nodes deleted."""
    remaining = remaining_identifier_edges(resolved_dir, erasure)

    def work(tx: neo4j.ManagedTransaction) -> int:
        found = tx.run("MATCH (c:Customer {customer_id: $id}) "
                       "SET c += $cleared, c.erasure_request = $request, c.erased_at = $at RETURN count(c)",
                       id=erasure.customer_id, cleared=dict.fromkeys(erasure.cleared_attributes),
                       request=erasure.request_id, at=erasure.at).single(strict=True)[0]
        if not found:
            raise LookupError(f"customer {erasure.customer_id} is not in the graph of database {database!r}; "
                              "the artifacts were erased, load the graph to bring it in line")
        tx.run("UNWIND $keys AS key MATCH (r:SourceRecord {record_key: key}) SET r += $cleared",
               keys=erasure.record_keys, cleared=dict.fromkeys(SOURCE_RECORD_PII))
        deleted = 0
        for edge_type in IDENTIFIER_EDGES:
            label, key = EDGES[edge_type].end, NODES[EDGES[edge_type].end].key
            # Labels, types and keys come from graph.model, never from input; values are parameters.
            held = tx.run(f"MATCH (:Customer {{customer_id: $id}})-[h:{edge_type}]->(i:{label}) "
                          f"WITH h, i.{key} AS value DELETE h RETURN value", id=erasure.customer_id).value()
            tx.run(f"UNWIND $edges AS e MATCH (c:Customer {{customer_id: $id}}) MATCH (i:{label} {{{key}: e.end}}) "
                   f"MERGE (c)-[h:{edge_type}]->(i) SET h.records = e.records",
                   id=erasure.customer_id, edges=remaining[edge_type][["end", "records"]].to_dict("records"))
            deleted += tx.run(f"UNWIND $values AS value MATCH (i:{label} {{{key}: value}}) WHERE NOT (i)--() "
                              "DELETE i RETURN count(*)", values=held).single(strict=True)[0]
        return deleted

    with driver.session(database=database) as session:
        return session.execute_write(work)
