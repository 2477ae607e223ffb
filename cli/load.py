"""``identigraph load``: graph tables into Neo4j (batched MERGE, a delta, or a bulk import)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.audit import record_run
from identigraph.cli.errors import CommandError
from identigraph.cli.neo4j_options import NeoDatabase, NeoPassword, NeoUri, NeoUser, open_driver
from identigraph.cli.output import console, progress_bar


def load(
    tables: Annotated[Path, typer.Argument(help="The --out folder of `identigraph graph build`.")],
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
    batch_size: Annotated[int, typer.Option(help="Rows per transaction.", min=1)] = 5000,
    replace: Annotated[bool, typer.Option(help="First delete the nodes of the graph model's labels (not others), "
                                               "so the graph is exactly these tables.")] = False,
    bulk: Annotated[bool, typer.Option(help="Replace the local launcher's database by an offline import "
                                            "(neo4j-admin's importer): a first load, many times faster.")] = False,
    delta_from: Annotated[Path | None, typer.Option(help="The tables loaded last time: write only what changed "
                                                         "since (new and changed rows, removed nodes and "
                                                         "relationships deleted).")] = None,
) -> None:
    """Load the graph tables into Neo4j with batched MERGE (safe to rerun), or --bulk import them."""
    from identigraph.graph.load import load_graph, table_counts

    node_counts, edge_counts = table_counts(tables)
    if bulk:
        _bulk_load(tables, uri)
        return
    if delta_from is not None:
        _delta_load(tables, delta_from, replace, uri, user, password, database, batch_size)
        return
    driver, settings = open_driver(uri, user, password, database)
    with driver, progress_bar() as progress:
        tasks = {name: progress.add_task(name, total=count) for name, count in {**node_counts, **edge_counts}.items()}
        summary = load_graph(tables, driver, settings.database, batch_size,
                             progress=lambda name, done, total: progress.update(tasks[name], completed=done),
                             replace=replace)
    console.print(f"loaded {sum(summary.nodes.values()):,} nodes and {sum(summary.relationships.values()):,} "
                  f"relationships into {settings.uri} in {summary.seconds:.1f}s "
                  f"({summary.per_second:,.0f} per second)"
                  + (f"; {summary.retries:,} batches retried after a transient error" if summary.retries else ""))
    record_run(tables, "load", {"uri": settings.uri, "database": settings.database, "replace": replace},
               [tables / "nodes", tables / "edges"], [])


def _bulk_load(tables: Path, uri: str | None) -> None:
    from identigraph.graph import local_neo4j
    from identigraph.graph.bulk_import import bulk_import

    if uri:
        raise CommandError(f"--bulk writes the local launcher's store files and cannot reach {uri}; load a server "
                           "elsewhere without --bulk, or run neo4j-admin database import on its machine")
    with console.status("bulk import") as status:
        summary = bulk_import(tables, progress=status.update)
    running = local_neo4j.running_settings()
    where = running.uri if running else "the local Neo4j (stopped since)"
    console.print(f"imported {sum(summary.nodes.values()):,} nodes and {sum(summary.relationships.values()):,} "
                  f"relationships in {summary.seconds:.1f}s ({summary.per_second:,.0f} per second; CSV files "
                  f"{summary.files_seconds:.1f}s before that) into {where}")
    record_run(tables, "load --bulk", {"uri": where},
               [tables / "nodes", tables / "edges"], [])


def _delta_load(tables: Path, delta_from: Path, replace: bool, uri, user, password, database, batch_size: int) -> None:
    from identigraph.graph.delta import load_delta
    from identigraph.graph.load import GraphTablesError, table_counts

    if replace:
        raise CommandError("--delta-from writes only the changes: leave out --bulk and --replace")
    try:
        table_counts(delta_from)
    except GraphTablesError as error:
        raise CommandError(f"--delta-from: {error}") from error
    driver, settings = open_driver(uri, user, password, database)
    with driver, console.status("comparing the tables and writing the changes"):
        delta = load_delta(delta_from, tables, driver, settings.database, batch_size)
    console.print(f"delta from {delta_from}: {sum(delta.upserted.values()):,} rows new or changed, "
                  f"{sum(delta.deleted.values()):,} removed, {sum(delta.unchanged.values()):,} unchanged and "
                  f"not written; {delta.seconds:.1f}s into {settings.uri}")
    record_run(tables, "load --delta-from", {"uri": settings.uri, "database": settings.database,
                                             "delta_from": delta_from}, [tables / "nodes", tables / "edges"], [])
