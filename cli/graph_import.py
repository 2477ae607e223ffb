"""``identigraph graph import MAPPING --out TABLES``: a thin shell over
``graph.mapping.import_graph`` (docs/bring-your-own-graph.md)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.audit import record_run


def graph_import(
    mapping: Annotated[Path, typer.Argument(help="The mapping (TOML): [nodes.<Label>] and [relationships.<TYPE>] "
                                                 "tables naming your files and columns.")],
    out: Annotated[Path, typer.Option(help="Folder for nodes/*.parquet, edges/*.parquet, quarantine.parquet, "
                                           "graph.json.")],
) -> None:
    """Turn your own CSV/JSONL/Parquet files into node and edge tables, with any labels and
    relationship types (load them with `identigraph load`)."""
    from identigraph.cli.app import _print_graph_summary, console, fail
    from identigraph.graph.mapping import MappingError, import_graph, load_mapping

    try:
        parsed = load_mapping(mapping)
        with console.status("importing") as status:
            summary = import_graph(parsed, out, progress=lambda message: status.update(f"importing {message}"))
    except MappingError as error:
        raise fail(str(error))
    _print_graph_summary(summary)
    for label, columns in summary.features.items():
        shown = ", ".join(columns[:8]) + (f" … ({len(columns)} in all)" if len(columns) > 8 else "")
        console.print(f"{label} features: {shown}")
    files = [mapping, *{n.file for n in parsed.nodes.values() if n.file}, *{r.file for r in parsed.relationships.values()}]
    record_run(out, "graph import", {"mapping": mapping}, files, [out, out / "nodes", out / "edges"])

