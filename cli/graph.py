"""``identigraph graph build | import | init``: the knowledge graph's tables, from a
resolution run or from your own files, and its Neo4j schema."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.audit import record_run
from identigraph.cli.neo4j_options import NeoDatabase, NeoPassword, NeoUri, NeoUser, open_driver
from identigraph.cli.output import console, print_graph_summary


def graph_build(
    resolved: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    out: Annotated[Path, typer.Option(help="Folder for nodes/*.parquet, edges/*.parquet, quarantine.parquet.")],
    events: Annotated[Path | None, typer.Option(help="Folder with orders, sessions, products (and fraud_labels).")] = None,
) -> None:
    """Turn resolution outputs and events into node and edge tables (the embedded graph)."""
    from identigraph.graph.build import build_graph_tables

    with console.status("building graph tables"):
        summary = build_graph_tables(resolved, out, events)
    print_graph_summary(summary)
    record_run(out, "graph build", {"events": events}, [resolved, *([events] if events else [])],
               [out, out / "nodes", out / "edges"])


def graph_import(
    mapping: Annotated[Path, typer.Argument(help="The mapping (TOML): [nodes.<Label>] and [relationships.<TYPE>] "
                                                 "tables naming your files and columns.")],
    out: Annotated[Path, typer.Option(help="Folder for nodes/*.parquet, edges/*.parquet, quarantine.parquet, "
                                           "graph.json.")],
) -> None:
    """Turn your own CSV/JSONL/Parquet files into node and edge tables, with any labels and
    relationship types (load them with `identigraph load`)."""
    from identigraph.graph.mapping import import_graph, load_mapping

    parsed = load_mapping(mapping)
    with console.status("importing") as status:
        summary = import_graph(parsed, out, progress=lambda message: status.update(f"importing {message}"))
    print_graph_summary(summary)
    for label, columns in summary.features.items():
        shown = ", ".join(columns[:8]) + (f" … ({len(columns)} in all)" if len(columns) > 8 else "")
        console.print(f"{label} features: {shown}")
    files = [mapping, *{n.file for n in parsed.nodes.values() if n.file}, *{r.file for r in parsed.relationships.values()}]
    record_run(out, "graph import", {"mapping": mapping}, files, [out, out / "nodes", out / "edges"])


def graph_init(uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None,
               database: NeoDatabase = "neo4j") -> None:
    """Create the constraints and indexes of cypher/schema.cypher (idempotent)."""
    from identigraph.graph.load import init_schema

    driver, settings = open_driver(uri, user, password, database)
    with driver:
        statements = init_schema(driver, settings.database)
    console.print(f"schema applied to {settings.uri} ({len(statements)} constraints and indexes, IF NOT EXISTS)")
