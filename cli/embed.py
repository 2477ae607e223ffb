"""``identigraph embed``: GNN embeddings of the built graph, or temporal link prediction on any
relationship of any tables beside its baselines (both need the ``gnn`` extra)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from identigraph.cli.audit import record_run
from identigraph.cli.errors import CommandError
from identigraph.cli.neo4j_options import NeoDatabase, NeoPassword, NeoUri, NeoUser, open_driver
from identigraph.cli.output import console, print_link_report, progress_bar


def embed(
    tables: Annotated[Path | None, typer.Argument(help="The --out folder of `identigraph graph build`.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for embeddings.parquet, model.pt, metrics.json "
                                                  "(default: TABLES/embeddings).")] = None,
    dim: Annotated[int | None, typer.Option(help="Embedding size [default: 64; 256 with --target].", min=2)] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs [default: 100 full-batch, 10 mini-batch]; "
                                                    "with --target, LightGCN's optimiser steps [default: 300].",
                                               min=1)] = None,
    batching: Annotated[str, typer.Option(help="full: the whole graph every step; neighbour: LinkNeighborLoader "
                                               "mini-batches (needs pyg-lib or torch-sparse); auto: neighbour "
                                               "when installed.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (split, initialisation, negatives).")] = 7,
    apply_checkpoint: Annotated[Path | None, typer.Option("--apply", help="model.pt of an earlier run: embed "
                                                          "the (grown) graph with it, no training.")] = None,
    from_neo4j: Annotated[bool, typer.Option(help="Read the graph from Neo4j instead of the tables.")] = False,
    to_neo4j: Annotated[bool, typer.Option(help="Write Customer.embedding to Neo4j and create its vector index.")] = False,
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
    target: Annotated[str | None, typer.Option(help="Temporal link prediction on this relationship type of any "
                                                    "tables (with --split-time).")] = None,
    split_time: Annotated[str | None, typer.Option(help="Train on relationships that began before this time, "
                                                        "rank the new pairs after it.")] = None,
) -> None:
    """Learn GNN embeddings of customers, products and devices (heterogeneous GraphSAGE, link prediction);
    with --target and --split-time, temporal link prediction on any relationship beside baselines."""
    from identigraph.embeddings.pipeline import apply
    from identigraph.embeddings.pipeline import embed as train_embeddings
    from identigraph.embeddings.train import TrainingConfig

    if tables is None and not from_neo4j:
        raise CommandError("give the graph tables folder, or --from-neo4j")
    out = out or (tables / "embeddings" if tables is not None else Path("embeddings"))
    if target or split_time:
        _embed_temporal(tables, target, split_time, out, epochs, dim, seed)
        return
    dim = dim or 64
    connection = open_driver(uri, user, password, database) if from_neo4j or to_neo4j else None
    try:
        frames = None
        if connection is not None and from_neo4j:
            from identigraph.embeddings.neo4j_io import read_graph_frames_from_neo4j

            driver, settings = connection
            with console.status(f"reading the graph from {settings.uri}"):
                frames = read_graph_frames_from_neo4j(driver, settings.database)
        if apply_checkpoint is not None:
            with console.status("embedding with the saved model"):
                result = apply(tables, apply_checkpoint, out, frames=frames)
        else:
            try:
                config = TrainingConfig(dim=dim, seed=seed, batching=batching)
            except ValueError as error:
                raise CommandError(f"--batching: {error}") from None
            if epochs:
                config = (replace(config, mini_batch_epochs=epochs) if config.mini_batches
                          else replace(config, epochs=epochs))
            with progress_bar() as progress:
                task = progress.add_task("training (link prediction)", total=config.epoch_count)
                result = train_embeddings(tables, out, config, frames=frames,
                                          progress=lambda epoch, loss: progress.update(
                                              task, completed=epoch, description=f"training, loss {loss:.3f}"))
            print_link_report(result.report)
        console.print(f"embedded {', '.join(f'{n:,} {t}s' for t, n in result.nodes.items())} in {result.seconds:.1f}s; "
                      f"wrote {out}/embeddings.parquet" + ("" if apply_checkpoint else ", model.pt, metrics.json"))
        record_run(out, "embed", {"dim": dim, "epochs": epochs, "batching": batching, "seed": seed,
                                  "apply": apply_checkpoint,
                                  "from_neo4j": from_neo4j}, [tables] if tables else [], [out])
        if connection is not None and to_neo4j:
            from identigraph.embeddings.neo4j_io import write_customer_embeddings

            driver, settings = connection
            with console.status("writing Customer.embedding"):
                written = write_customer_embeddings(driver, out / "embeddings.parquet", settings.database)
            console.print(f"wrote {written:,} customer embeddings to {settings.uri}; vector index customer_embedding "
                          "(cosine); try `identigraph query similar_customers --param customer_id=…`")
    finally:
        if connection is not None:
            connection[0].close()


def _embed_temporal(tables: Path | None, target: str | None, split_time: str | None, out: Path, steps: int | None,
                    dim: int | None, seed: int) -> None:
    from identigraph.embeddings.temporal import LIGHTGCN_DIM, LIGHTGCN_STEPS, embed_temporal

    if not (target and split_time and tables is not None):
        raise CommandError("temporal link prediction needs the tables folder, --target REL and --split-time T")
    with console.status("temporal link prediction") as status:
        report = embed_temporal(tables, target, split_time, out, steps=steps or LIGHTGCN_STEPS,
                                dim=dim or LIGHTGCN_DIM, seed=seed, progress=lambda message: status.update(message))
    table = Table(title=f"{target}: {report.train_pairs:,} pairs before {report.split_time}, "
                        f"{report.test_pairs:,} new after it ({report.starts_evaluated:,} starts)",
                  title_justify="left")
    for column in ("model", f"Recall@{report.k}", f"NDCG@{report.k}", "s"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model in report.models:
        table.add_row(model.name, f"{model.recall:.4f}", f"{model.ndcg:.4f}", f"{model.seconds:.1f}")
    console.print(table)
    console.print(f"wrote {out}/metrics.json and {out}/embeddings.parquet (LightGCN on every pair)")
    record_run(out, "embed --target", {"target": target, "split_time": split_time, "steps": steps, "dim": dim,
                                       "seed": seed}, [tables], [out])
