"""Node and edge tables -> Neo4j: batched ``UNWIND … MERGE`` in write transactions.

Every statement is a fixed text with the rows as a parameter; labels and relationship types
come from ``graph.model``, never from input data. Loading is idempotent: nodes are merged on
their key, relationships on their two ends, and properties set from the row, so a second load
of the same tables changes nothing and a load killed half way, run again, ends with exactly
the graph a clean load gives. Managed transactions (``execute_write``) retry transient
errors (deadlocks, lock timeouts, leader switches) with exponential back-off for up to the
driver's ``max_transaction_retry_time`` (30 s); the summary counts the batches run again, and
past that the load stops with ``LoadInterrupted``, committed batches kept.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import neo4j
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from identigraph.graph.connection import one_line
from identigraph.graph.model import BUILT_MODEL, SAFE_NAME, GraphModel, model_of

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "cypher" / "schema.cypher"


class GraphTablesError(ValueError):
    """The table folder is not one ``identigraph graph build`` wrote."""


@dataclass
class LoadSummary:
    nodes: dict[str, int] = field(default_factory=dict)
    relationships: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    retries: int = 0  # batches the driver ran again after a transient error (lock timeout, deadlock)

    @property
    def total(self) -> int:
        return sum(self.nodes.values()) + sum(self.relationships.values())

    @property
    def per_second(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0


def schema_statements(path: Path = SCHEMA_FILE) -> list[str]:
    """The statements of ``schema.cypher`` (comments dropped, split on ``;``)."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("//"))
    return [statement.strip() for statement in text.split(";") if statement.strip()]


def init_schema(driver: neo4j.Driver, database: str = "neo4j", model: GraphModel = BUILT_MODEL) -> list[str]:
    """Apply ``cypher/schema.cypher``, and a uniqueness constraint on the key of each label
    of ``model`` it does not cover (an imported graph's); every statement says IF NOT
    EXISTS, so reruns are no-ops."""
    statements = schema_statements()
    for label, node in model.nodes.items():
        built = BUILT_MODEL.nodes.get(label)
        if built is None or built.key != node.key:  # schema.cypher covers the built labels' keys only
            _check_names(label, node.key)
            statements.append(f"CREATE CONSTRAINT {label}_{node.key}_key IF NOT EXISTS "
                              f"FOR (n:{label}) REQUIRE n.{node.key} IS UNIQUE")
    for statement in statements:
        driver.execute_query(statement, database_=database)
    driver.execute_query("CALL db.awaitIndexes(300)", database_=database)
    return statements


def _check_names(*names: str) -> None:
    """Labels, types and keys go into Cypher text: a ``graph.json`` edited by hand could
    carry anything."""
    for name in names:
        if not SAFE_NAME.match(name):
            raise GraphTablesError(f"{name!r} cannot be a Neo4j label, type or property name; import the "
                                   "tables again with `identigraph graph import`")


def _temporal_assignments(variable: str, temporal_columns: list[str]) -> str:
    """``SET`` items turning ISO strings into LocalDateTime on the server: the driver packs
    Python datetimes one by one in Python (3 s per 80k values), strings go through its Rust
    packer. A null removes the property, as ``+=`` does for the other columns."""
    for column in temporal_columns:
        if not SAFE_NAME.match(column):
            raise GraphTablesError(f"column name {column!r} cannot be a property name; rebuild the tables")
    return "".join(f", {variable}.`{c}` = localdatetime(row.times.`{c}`)" for c in temporal_columns)


def node_statement(label: str, temporal_columns: Sequence[str] = (), model: GraphModel = BUILT_MODEL) -> str:
    key = model.nodes[label].key
    _check_names(label, key)
    return (f"UNWIND $rows AS row MERGE (n:{label} {{{key}: row.key}}) "
            f"SET n += row.properties{_temporal_assignments('n', list(temporal_columns))}")


def edge_statement(edge_type: str, temporal_columns: Sequence[str] = (), model: GraphModel = BUILT_MODEL) -> str:
    edge = model.edges[edge_type]
    start_key, end_key = model.nodes[edge.start].key, model.nodes[edge.end].key
    _check_names(edge_type, edge.start, edge.end, start_key, end_key)
    return (f"UNWIND $rows AS row "
            f"MATCH (a:{edge.start} {{{start_key}: row.start}}) "
            f"MATCH (b:{edge.end} {{{end_key}: row.end}}) "
            f"MERGE (a)-[r:{edge_type}]->(b) SET r += row.properties{_temporal_assignments('r', list(temporal_columns))}")


def _plain(value):
    """A cell as the driver sends it: numpy scalars and arrays as Python values, NaN as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value


def temporal_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]


def _rows(frame: pd.DataFrame, key_columns: list[str], names: list[str]) -> list[dict]:
    """Parameter rows: the key column(s) by their role name, timestamps as ISO strings under
    ``times``, the rest under ``properties`` (nulls kept: ``+=`` removes a property set to null,
    so a reload with a value gone leaves no stale one)."""
    keys = [frame[c].astype(str).tolist() for c in key_columns]
    times = temporal_columns(frame)
    property_columns = [c for c in frame.columns if c not in key_columns and c not in times]
    values = [[_plain(v) for v in frame[c].tolist()] for c in property_columns]
    iso = [frame[c].dt.strftime("%Y-%m-%dT%H:%M:%S").where(frame[c].notna(), None).tolist() for c in times]
    rows = []
    for i in range(len(frame)):
        row = {name: key[i] for name, key in zip(names, keys)}
        row["properties"] = {c: column[i] for c, column in zip(property_columns, values)}
        if times:
            row["times"] = {c: column[i] for c, column in zip(times, iso)}
        rows.append(row)
    return rows


def _batches(path: Path, batch_size: int) -> Iterator[pd.DataFrame]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        yield batch.to_pandas()


def _file_temporal_columns(path: Path) -> list[str]:
    schema = pq.read_schema(path)
    return [field.name for field in schema if pa.types.is_timestamp(field.type)]


def table_files(tables_dir: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """(label -> nodes file, type -> edges file) present in a built table folder."""
    tables_dir = Path(tables_dir)
    if not (tables_dir / "nodes").is_dir():
        raise GraphTablesError(f"{tables_dir}: no nodes/ folder; build the tables first with "
                               "`identigraph graph build RESOLVED_DIR --events DATA_DIR --out {tables_dir}`")
    model = model_of(tables_dir)
    nodes = {label: tables_dir / "nodes" / f"{label}.parquet" for label in model.nodes
             if (tables_dir / "nodes" / f"{label}.parquet").exists()}
    edges = {t: tables_dir / "edges" / f"{t}.parquet" for t in model.edges
             if (tables_dir / "edges" / f"{t}.parquet").exists()}
    return nodes, edges


def table_counts(tables_dir: Path) -> tuple[dict[str, int], dict[str, int]]:
    nodes, edges = table_files(tables_dir)
    return ({label: pq.ParquetFile(p).metadata.num_rows for label, p in nodes.items()},
            {t: pq.ParquetFile(p).metadata.num_rows for t, p in edges.items()})


class LoadInterrupted(RuntimeError):
    """The server went away during a load. Committed batches stay; a rerun completes the load."""


@dataclass(frozen=True)
class _TableJob:
    name: str
    path: Path
    statement: str
    key_columns: tuple[str, ...]
    row_names: tuple[str, ...]
    rows: int
    labels: frozenset[str]  # labels whose nodes the job writes or locks


def _write_tables(driver: neo4j.Driver, database: str, jobs: list[_TableJob], batch_size: int, workers: int,
                  progress: Callable[[str, int, int], None] | None) -> tuple[dict[str, int], int]:
    """Workers take the largest pending table that touches no label another worker is on, and
    write it batch by batch in their own session: while one waits on the server the other
    builds its next batch. Two relationship tables on the same nodes would deadlock on node
    locks (Neo4j resolves it, and ``execute_write`` retries, but the time is lost).

    Returns (rows written per table, retried attempts)."""
    pending = sorted(jobs, key=lambda j: -j.rows)
    busy: set[str] = set()
    written: dict[str, int] = {}
    attempts: list[int] = []  # one entry per transaction function call; list.append is thread-safe
    batches: list[int] = []  # one entry per committed batch
    failure: list[BaseException] = []
    turn = threading.Condition()

    def next_job() -> _TableJob | None:
        with turn:
            while pending and not failure:
                for job in pending:
                    if not job.labels & busy:
                        pending.remove(job)
                        busy.update(job.labels)
                        return job
                turn.wait()
            return None

    def work() -> None:
        with driver.session(database=database) as session:
            while (job := next_job()) is not None:
                try:
                    done = 0
                    for frame in _batches(job.path, batch_size):
                        rows = _rows(frame, list(job.key_columns), list(job.row_names))

                        def write_batch(tx: neo4j.ManagedTransaction, rows=rows) -> None:
                            attempts.append(1)
                            tx.run(job.statement, rows=rows).consume()

                        session.execute_write(write_batch)
                        done += len(frame)
                        batches.append(1)
                        if progress:
                            progress(job.name, done, job.rows)
                    written[job.name] = done
                except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired) as error:
                    # After the driver's own retries: the server is gone, not busy.
                    failure.append(LoadInterrupted(
                        f"Neo4j stopped answering while loading {job.name} ({done:,} of {job.rows:,} rows "
                        f"committed): {one_line(error)}. Every committed batch is kept; once the "
                        "server is back, run the same `identigraph load` again: MERGE completes exactly the "
                        "graph a clean load gives."))
                    return
                except neo4j.exceptions.TransientError as error:
                    # The driver retried with back-off for its max_transaction_retry_time.
                    failure.append(LoadInterrupted(
                        f"Neo4j kept refusing a batch of {job.name} with a transient error after retrying "
                        f"({done:,} of {job.rows:,} rows committed): {error.code}: {one_line(error.message)}. "
                        "Another transaction holds locks on these nodes, or the server is overloaded; every committed "
                        "batch is kept, so run the same `identigraph load` again once it is free."))
                    return
                except BaseException as error:
                    failure.append(error)
                    raise
                finally:
                    with turn:
                        busy.difference_update(job.labels)
                        turn.notify_all()

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(work) for _ in range(max(1, workers))]
    if failure:
        raise failure[0]
    for future in futures:
        future.result()
    return written, len(attempts) - len(batches)


def delete_model_nodes(driver: neo4j.Driver, database: str = "neo4j", model: GraphModel = BUILT_MODEL) -> None:
    """Remove every node of the model's labels (and their relationships), in batches; other
    labels in the database are left alone."""
    with driver.session(database=database) as session:  # IN TRANSACTIONS needs auto-commit
        for label in model.nodes:
            _check_names(label)
            session.run(f"MATCH (n:{label}) CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 10000 ROWS").consume()


def load_graph(tables_dir: Path, driver: neo4j.Driver, database: str = "neo4j", batch_size: int = 5000,
               progress: Callable[[str, int, int], None] | None = None, workers: int = 2,
               replace: bool = False) -> LoadSummary:
    """Load every node table, then every edge table (their ends must exist first).

    Loading adds to and updates what is there; ``replace`` first removes the model's nodes,
    so the graph is exactly these tables (a run of other data leaves nothing behind).
    ``progress(table, rows_done, rows_total)`` is called after each committed batch.
    """
    model = model_of(tables_dir)
    node_files, edge_files = table_files(tables_dir)
    node_counts, edge_counts = table_counts(tables_dir)
    if replace:
        delete_model_nodes(driver, database, model)
    init_schema(driver, database, model)
    summary = LoadSummary()
    started = time.perf_counter()
    node_jobs = [_TableJob(label, path, node_statement(label, _file_temporal_columns(path), model),
                           (model.nodes[label].key,), ("key",), node_counts[label], frozenset([label]))
                 for label, path in node_files.items()]
    summary.nodes, node_retries = _write_tables(driver, database, node_jobs, batch_size, workers, progress)
    edge_jobs = [_TableJob(edge_type, path, edge_statement(edge_type, _file_temporal_columns(path), model),
                           ("start", "end"), ("start", "end"), edge_counts[edge_type],
                           frozenset([model.edges[edge_type].start, model.edges[edge_type].end]))
                 for edge_type, path in edge_files.items()]
    summary.relationships, edge_retries = _write_tables(driver, database, edge_jobs, batch_size, workers, progress)
    summary.retries = node_retries + edge_retries
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def graph_counts(driver: neo4j.Driver, database: str = "neo4j",
                 model: GraphModel = BUILT_MODEL) -> tuple[dict[str, int], dict[str, int]]:
    """Node count per model label and relationship count per model type, as Neo4j has them."""
    nodes, relationships = {}, {}
    for label in model.nodes:
        _check_names(label)  # Cypher takes no parameter for labels and types
        records, _, _ = driver.execute_query(f"MATCH (n:{label}) RETURN count(n) AS c", database_=database,
                                             routing_=neo4j.RoutingControl.READ)
        nodes[label] = records[0]["c"]
    for edge_type in model.edges:
        _check_names(edge_type)
        records, _, _ = driver.execute_query(f"MATCH ()-[r:{edge_type}]->() RETURN count(r) AS c", database_=database,
                                             routing_=neo4j.RoutingControl.READ)
        relationships[edge_type] = records[0]["c"]
    return nodes, relationships
