"""``identigraph demo``: the whole pipeline on synthetic data, no server needed."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.embedding_options import default_embeddings
from identigraph.cli.errors import GNN_INSTALL
from identigraph.cli.neo4j_options import open_driver
from identigraph.cli.output import (
    console,
    print_graph_summary,
    print_link_report,
    print_metrics,
    print_profile,
    print_resolution,
    print_rows,
    progress_bar,
)
from identigraph.cli.score import print_risk
from identigraph.cli.segment import print_segments


def demo(
    out: Annotated[Path, typer.Option(help="Working folder for the demo's files.")] = Path(".demo"),
    customers: Annotated[int, typer.Option(help="Size of the synthetic data set.", min=1000)] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Run the whole pipeline on synthetic data, with no server: generate, profile, resolve,
    evaluate against the truth, build the graph tables, train embeddings, score fraud risk,
    segment, and write report.html; with NEO4J_URI set, also load everything into Neo4j and
    run cookbook queries."""
    from identigraph.synthetic import GeneratorConfig, generate_dataset
    from identigraph.synthetic.profile import profile_dataset

    data_dir = out / "data"
    console.rule("1. synthetic multi-channel data")
    with progress_bar() as progress:
        task = progress.add_task("generating customers", total=customers)
        summary = generate_dataset(GeneratorConfig(customers=customers, seed=seed), data_dir,
                                   progress=lambda n: progress.advance(task, n))
    console.print(f"{summary.customers:,} customers in {summary.channel_records:,} channel records, "
                  f"written to {data_dir} in {summary.seconds:.1f}s")
    console.rule("2. data profile")
    print_profile(profile_dataset(data_dir))

    import pandas as pd

    from identigraph.resolution.config import load_config
    from identigraph.resolution.evaluation import evaluate_entities
    from identigraph.resolution.linker import Linker

    console.rule("3. identity resolution")
    resolution_dir = out / "resolution"
    with console.status("resolving") as status:
        result = Linker(load_config(data_dir / "linkage.toml"), progress=lambda step: status.update(step)).run(
            [data_dir], resolution_dir)
    print_resolution(result)
    truth = pd.read_parquet(data_dir / "truth" / "records.parquet")
    metrics = evaluate_entities(pd.read_parquet(resolution_dir / "entities.parquet"), truth, "record_id",
                                "customer_id", "source")
    console.print("accuracy against the generator's truth:")
    print_metrics(metrics)

    from identigraph.graph.build import build_graph_tables
    from identigraph.graph.networkx_view import shared_identifier_groups

    console.rule("4. knowledge graph (embedded tables)")
    tables_dir = out / "graph"
    with console.status("building graph tables"):
        graph_summary = build_graph_tables(resolution_dir, tables_dir, data_dir)
    print_graph_summary(graph_summary)
    groups = shared_identifier_groups(tables_dir)
    sizes = ", ".join(str(len(g)) for g in groups[:10])
    console.print(f"customers joined by shared devices or phones (networkx, no server): {len(groups):,} groups "
                  f"of 3 or more; largest: {sizes}")
    console.rule("5. GNN embeddings (heterogeneous GraphSAGE, link prediction)")
    embeddings_path: Path | None = default_embeddings(tables_dir)
    if importlib.util.find_spec("torch_geometric") is None:
        embeddings_path = None
        console.print(f"skipped: the GNN needs PyTorch and PyTorch Geometric ({GNN_INSTALL}); risk and segments "
                      "use the graph features alone")
    else:
        from identigraph.embeddings.pipeline import embed as train_embeddings
        from identigraph.embeddings.train import TrainingConfig

        with progress_bar() as progress:
            task = progress.add_task("training", total=TrainingConfig().epoch_count)
            embedded = train_embeddings(tables_dir, tables_dir / "embeddings",
                                        progress=lambda epoch, loss: progress.update(task, completed=epoch))
        print_link_report(embedded.report)

    from identigraph.scoring.pipeline import score_customers
    from identigraph.scoring.report import write_report
    from identigraph.scoring.segments import segment_customers

    console.rule("6. fraud risk (graph features + embeddings, reason codes)")
    with progress_bar() as progress:
        task = progress.add_task("cross-validated training", total=6)
        risk = score_customers(tables_dir, tables_dir, embeddings_path, truth_dir=data_dir / "truth",
                               progress=lambda done, total: progress.update(task, completed=done, total=total))
    print_risk(risk)
    console.rule("7. segments")
    with console.status("segmenting customers"):
        segments = segment_customers(tables_dir, tables_dir, embeddings_path, risk_path=tables_dir / "risk.parquet")
    print_segments(segments)
    with console.status("drawing the report"):
        report_file = write_report(tables_dir, out / "report.html", resolution_dir, data_dir / "truth")

    if os.environ.get("NEO4J_URI"):
        from identigraph.graph.cookbook import run_cookbook_query
        from identigraph.graph.load import load_graph

        console.rule("8. Neo4j")
        driver, settings = open_driver(None, "neo4j", None, "neo4j")
        with driver:
            # The demo's graph replaces the model's nodes there (other labels are kept).
            with console.status(f"loading into {settings.uri} (replacing identigraph's nodes)"):
                loaded = load_graph(tables_dir, driver, settings.database, replace=True)
            console.print(f"loaded {loaded.total:,} nodes and relationships in {loaded.seconds:.1f}s "
                          f"({loaded.per_second:,.0f} per second)")
            top = pd.read_parquet(tables_dir / "nodes" / "Customer.parquet", columns=["customer_id", "record_count"])
            customer = top.sort_values(["record_count", "customer_id"], ascending=[False, True])["customer_id"].iloc[0]
            console.print(f"cookbook: cross_channel_journey --param customer_id={customer}")
            print_rows(*run_cookbook_query(driver, "cross_channel_journey", {"customer_id": customer},
                                           settings.database), "table")
            console.print("cookbook: shared_devices --param limit=5")
            print_rows(*run_cookbook_query(driver, "shared_devices", {"limit": "5"}, settings.database), "table")
            if embeddings_path is not None:
                from identigraph.embeddings.neo4j_io import write_customer_embeddings

                write_customer_embeddings(driver, embeddings_path, settings.database)
                console.print(f"cookbook: similar_customers --param customer_id={customer} --param k=5")
                print_rows(*run_cookbook_query(driver, "similar_customers", {"customer_id": customer, "k": "5"},
                                               settings.database), "table")
            from identigraph.scoring.neo4j_io import write_risk, write_segments

            write_segments(driver, tables_dir, settings.database)
            write_risk(driver, tables_dir, settings.database)
            console.print("cookbook: top_risk_customers --param limit=5")
            print_rows(*run_cookbook_query(driver, "top_risk_customers", {"limit": "5"}, settings.database), "table")
    else:
        console.print("set NEO4J_URI (and NEO4J_PASSWORD) to also load the graph into Neo4j and run the cookbook")
    console.print(f"report: {report_file.path.resolve()}")
