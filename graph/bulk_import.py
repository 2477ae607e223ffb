"""Bulk import of the graph tables into a fresh database: Neo4j's own offline importer
(``neo4j-admin database import full``) on the local launcher's store.

``identigraph load`` merges over Bolt, which is what an existing or remote graph needs
(idempotent, rerunnable), but on two cores it cannot pass ~48k nodes+relationships per
second even with keys only (docs/benchmarks.md). For a first load, Neo4j's importer writes
the store files directly. This module turns the tables into the importer's CSV files (header
``key:ID(Label)``, ``:START_ID(Label)``/``:END_ID(Label)``, typed properties), stops the
local server, runs the importer from the Maven jars the launcher already resolves, starts
the server again and applies ``cypher/schema.cypher``. The result is the graph a MERGE load
gives: same nodes, relationships and properties (tested).

A server elsewhere cannot be imported into over Bolt: ``write_import_files`` writes the
files and ``import_command`` gives the ``neo4j-admin`` arguments to run on that server's machine.
"""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import csv

from identigraph.graph import local_neo4j
from identigraph.graph.load import GraphTablesError, LoadSummary, init_schema
from identigraph.graph.model import model_of

ARRAY_DELIMITER = "\x1f"  # never inside our values (unit separator)


@dataclass
class ImportSummary(LoadSummary):
    """``seconds`` is the importer, restart and schema: the time until the graph answers."""
    import_seconds: float = 0.0  # the importer alone
    files_seconds: float = 0.0  # writing the CSV files, before that


def _import_column(name: str, column: pa.ChunkedArray) -> tuple[str, pa.ChunkedArray] | None:
    """The importer's header entry and cells for a property column (None: nothing to import,
    like a column with no values at all). Arrow compute throughout: the pandas version spent
    10 s of a 45 s import of 100k customers formatting timestamps one by one."""
    kind = column.type
    if pa.types.is_null(kind):
        return None
    if pa.types.is_boolean(kind):
        return f"{name}:boolean", column
    if pa.types.is_integer(kind):
        return f"{name}:long", column
    if pa.types.is_floating(kind):
        # Neo4j stores doubles, and the MERGE load sends a float32 widened (8.91919994354248);
        # float32's own shortest text ("8.9192") would import as another double.
        return f"{name}:double", column.cast(pa.float64())
    if pa.types.is_timestamp(kind):
        # What the MERGE load stores: local date-times to the second. A cast and a replace
        # are 10x faster than pc.strftime (which would also keep the milliseconds).
        seconds = column.cast(pa.timestamp("s"), safe=False).cast(pa.string())
        return f"{name}:localdatetime", pc.replace_substring(seconds, " ", "T", max_replacements=1)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"{name}:string[]", pc.binary_join(column.cast(pa.list_(pa.string())), ARRAY_DELIMITER)
    return name, column.cast(pa.string())


def _write(table: pa.Table, roles: dict[str, str], path: Path) -> int:
    """Write ``table`` as an importer CSV; ``roles`` gives the header of the key columns
    (``customer_id:ID(Customer)``, ``:START_ID(…)``), other columns get ``name:type``."""
    header, columns = [], []
    for name, column in zip(table.column_names, table.columns):
        entry = (roles[name], column.cast(pa.string())) if name in roles else _import_column(name, column)
        if entry is not None:
            header.append(entry[0])
            columns.append(entry[1])
    csv.write_csv(pa.Table.from_arrays(columns, names=header), path,
                  write_options=csv.WriteOptions(quoting_style="needed"))
    return table.num_rows


def write_import_files(tables_dir: Path, out_dir: Path) -> tuple[list[str], dict[str, int], dict[str, int]]:
    """CSV files for the importer; returns its ``--nodes``/``--relationships`` arguments and
    the row counts per label and type."""
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arguments, nodes, relationships = [], {}, {}
    model = model_of(tables_dir)
    for node in model.nodes.values():
        path = tables_dir / "nodes" / f"{node.label}.parquet"
        if path.exists():
            target = out_dir / f"{node.label}.csv"
            nodes[node.label] = _write(pq.read_table(path), {node.key: f"{node.key}:ID({node.label})"}, target)
            arguments.append(f"--nodes={node.label}={target}")
    for edge in model.edges.values():
        path = tables_dir / "edges" / f"{edge.type}.parquet"
        if path.exists():
            target = out_dir / f"{edge.type}.csv"
            roles = {"start": f":START_ID({edge.start})", "end": f":END_ID({edge.end})"}
            relationships[edge.type] = _write(pq.read_table(path), roles, target)
            arguments.append(f"--relationships={edge.type}={target}")
    if not nodes:
        raise GraphTablesError(f"{tables_dir}/nodes holds no node table; pass the --out folder of `identigraph graph build`")
    return arguments, nodes, relationships


def import_command(arguments: list[str], report: Path, database: str = "neo4j") -> list[str]:
    """The importer's arguments after ``neo4j-admin`` (or ``org.neo4j.cli.AdminTool``);
    ``report`` is where it lists bad entries (by default ``import.report`` in the current
    folder, wherever the user happens to be)."""
    # The database name first: --nodes/--relationships take several files each and would
    # read a name after them as one more file.
    return ["database", "import", "full", database, "--overwrite-destination=true",
            f"--array-delimiter={ARRAY_DELIMITER}", "--threads=2", f"--report-file={report}", *arguments]


def bulk_import(tables_dir: Path, work_dir: Path | None = None, progress=None) -> ImportSummary:
    """Replace the local launcher's ``neo4j`` database with the tables: stop, import, start, schema."""
    summary = ImportSummary()
    work_dir = Path(work_dir or local_neo4j.state_dir() / "import")
    say = progress or (lambda message: None)
    say("writing the importer's CSV files")
    started = time.perf_counter()
    arguments, summary.nodes, summary.relationships = write_import_files(tables_dir, work_dir)
    summary.files_seconds = round(time.perf_counter() - started, 2)
    java = local_neo4j._require_tool("java", "Neo4j's importer runs on Java 17+")
    classpath = local_neo4j.resolve_classpath()
    home = local_neo4j.state_dir() / "data"  # the launcher's DBMS home: data/databases/neo4j below it
    (home / "conf").mkdir(parents=True, exist_ok=True)
    (home / "conf" / "neo4j.conf").touch()
    started = time.perf_counter()
    say("stopping the local Neo4j (the importer writes the store offline)")
    local_neo4j.stop()
    say("importing")
    log = work_dir / "import.log"
    with open(log, "w") as output:
        result = subprocess.run([java, "-Xmx1g", "-cp", classpath, "org.neo4j.cli.AdminTool",
                                 *import_command(arguments, work_dir / "import.report")],
                                env={**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(home / "conf")},
                                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    summary.import_seconds = round(time.perf_counter() - started, 2)
    if result.returncode:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise local_neo4j.LocalNeo4jError(f"Neo4j's importer failed (exit {result.returncode}); the database was "
                                          f"not changed past the importer's own rollback. Log {log}:\n{tail}")
    say("starting the local Neo4j and creating the schema")
    status = local_neo4j.start()
    settings = local_neo4j.running_settings()
    if settings is None:
        raise local_neo4j.LocalNeo4jError(f"the local Neo4j stopped right after it started; see "
                                          f"{local_neo4j.state_dir(None)} for its log")
    with settings.driver() as driver:
        init_schema(driver, settings.database, model_of(tables_dir))
    summary.seconds = round(time.perf_counter() - started, 2)
    if not status.running:
        raise local_neo4j.LocalNeo4jError("the local Neo4j did not come back after the import; see its server.log")
    return summary
