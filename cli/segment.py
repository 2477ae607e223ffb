"""``identigraph segment``: labelled segments of customers, or of any node label."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from identigraph.cli.audit import record_run
from identigraph.cli.embedding_options import EmbeddingsOption, NoEmbeddings, customer_embeddings, label_embeddings
from identigraph.cli.errors import CommandError
from identigraph.cli.neo4j_options import NeoDatabase, NeoPassword, NeoUri, NeoUser, write_to_neo4j
from identigraph.cli.output import console


def segment(
    tables: Annotated[Path, typer.Argument(help="The --out folder of `identigraph graph build`.")],
    k: Annotated[str, typer.Option(help="Number of segments, or auto (silhouette over --k-min..--k-max).")] = "auto",
    k_min: Annotated[int, typer.Option(min=2)] = 3,
    k_max: Annotated[int, typer.Option(min=2)] = 8,
    seed: Annotated[int, typer.Option(help="Random seed (k-means, PCA, silhouette sample).")] = 7,
    embeddings: EmbeddingsOption = None, no_embeddings: NoEmbeddings = False,
    to_neo4j: Annotated[bool, typer.Option(help="Write (:Segment) nodes and IN_SEGMENT edges to Neo4j.")] = False,
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
    node_label: Annotated[str | None, typer.Option(help="Segment every node of this label of any tables (built "
                                                        "or imported).")] = None,
) -> None:
    """Cluster customers into labelled segments on embeddings + RFM features; with --node-label,
    the nodes of any label on their features, relationships and embeddings."""
    from identigraph.scoring.segments import SegmentConfig, segment_customers

    if k != "auto" and not k.isdigit():
        raise CommandError(f"--k {k!r}: give a number of segments or auto")
    config = SegmentConfig(k=None if k == "auto" else int(k), k_range=(k_min, k_max), seed=seed)
    from identigraph.graph.model import BUILT_MODEL, model_of

    if node_label is None and model_of(tables) is not BUILT_MODEL:
        raise CommandError(f"{tables} was not built by `identigraph graph build`: name the label to segment with "
                   f"--node-label (it has {', '.join(sorted(model_of(tables).nodes))})")
    if node_label is not None:
        _segment_node_label(tables, node_label, config, embeddings, no_embeddings)
        return
    with console.status("segmenting customers (k-means, silhouette, stability over seeds)"):
        result = segment_customers(tables, tables, customer_embeddings(tables, embeddings, no_embeddings), config,
                                   risk_path=tables / "risk.parquet")
    print_segments(result)
    record_run(tables, "segment", {"k": k, "k_min": k_min, "k_max": k_max, "seed": seed,
                                   "embeddings": not no_embeddings}, [tables / "nodes", tables / "edges"],
               [result.path])
    if to_neo4j:
        from identigraph.scoring.neo4j_io import write_segments

        written, where = write_to_neo4j(write_segments, tables, "writing segments", uri, user, password, database)
        console.print(f"wrote {result.k} (:Segment) nodes and {written:,} IN_SEGMENT edges to {where}; "
                      "try `identigraph query segment_summary`")


def _segment_node_label(tables: Path, label: str, config, embeddings: Path | None, no_embeddings: bool) -> None:
    from identigraph.scoring.node_segments import segment_nodes

    path = label_embeddings(tables, embeddings, no_embeddings)
    with console.status(f"segmenting {label} nodes (k-means, silhouette, stability over seeds)"):
        result = segment_nodes(tables, label, tables, path, config)
    tried = ", ".join(f"k={k}: {s:.3f}" for k, s in result.silhouette.items())
    table = Table(title=f"{result.k} segments of {label}" + (f" (silhouette {tried})" if tried else "") +
                  f"; stability ARI across seeds {result.stability_ari:.3f}", title_justify="left")
    for name in ("id", "segment", "nodes", "share", "what sets it apart"):
        table.add_column(name, justify="right" if name in ("nodes", "share") else "left")
    for p in result.profiles.itertuples():
        table.add_row(p.segment_id, p.segment, f"{p.nodes:,}", f"{p.share:.1%}", p.distinctive)
    console.print(table)
    console.print(f"wrote {result.path}, segment_profiles.parquet (with each segment's most over-represented "
                  f"neighbours), segments.json in {result.seconds:.1f}s")
    record_run(tables, "segment --node-label", {"node_label": label, "k": config.k, "seed": config.seed,
                                                "embeddings": str(path) if path else None},
               [tables / "nodes", tables / "edges"], [result.path])


def print_segments(result) -> None:
    tried = ", ".join(f"k={k}: {s:.3f}" for k, s in result.silhouette.items())
    table = Table(title=f"{result.k} segments" + (f" (silhouette {tried})" if tried else "") +
                  f"; stability ARI across seeds {result.stability_ari:.3f}", title_justify="left")
    for name in ("id", "segment", "customers", "spend", "orders", "recency", "tenure", "risky"):
        table.add_column(name, justify="left" if name in ("id", "segment") else "right")
    for p in result.profiles.itertuples():
        table.add_row(p.segment_id, p.segment, f"{p.customers:,}", f"{p.avg_spend:,.0f}", f"{p.median_orders:g}",
                      f"{p.median_recency_days:,.0f}d", f"{p.median_tenure_days:,.0f}d", f"{p.risky_share:.1%}")
    console.print(table)
    console.print("spend: average per customer; orders, recency, tenure: medians; risky: share in the high and "
                  "critical risk bands; categories, channel and device mix in segment_profiles.parquet")
    console.print(f"wrote {result.path}, segment_profiles.parquet, segments.json in {result.seconds:.1f}s")
