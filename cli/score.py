"""``identigraph score``: fraud-risk scores with reasons, for customers or any node label."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from identigraph.cli.audit import record_run
from identigraph.cli.embedding_options import EmbeddingsOption, NoEmbeddings, customer_embeddings, label_embeddings
from identigraph.cli.errors import CommandError
from identigraph.cli.neo4j_options import NeoDatabase, NeoPassword, NeoUri, NeoUser, write_to_neo4j
from identigraph.cli.output import console, progress_bar


def score(
    tables: Annotated[Path, typer.Argument(help="The --out folder of `identigraph graph build`.")],
    customer: Annotated[str | None, typer.Option(help="Print this customer's score and reasons from risk.parquet.")] = None,
    labels: Annotated[Path | None, typer.Option(help="Fraud labels (source,record_id,label or customer_id,label); "
                                                     "default: the fraud_label of the source records.")] = None,
    truth: Annotated[Path | None, typer.Option(help="The generator's truth/ folder: evaluate against it.")] = None,
    unsupervised: Annotated[bool, typer.Option(help="Ignore labels: anomaly score (a rank, not a probability).")] = False,
    seed: Annotated[int, typer.Option(help="Random seed (folds, trees).")] = 7,
    folds: Annotated[int, typer.Option(help="Cross-validation folds.", min=2)] = 5,
    compare_gnn: Annotated[bool, typer.Option(help="Also train a GNN node classifier on the same folds and "
                                                   "report it beside the trees (five more trainings).")] = False,
    embeddings: EmbeddingsOption = None, no_embeddings: NoEmbeddings = False,
    to_neo4j: Annotated[bool, typer.Option(help="Set Customer.risk_score, risk_band, risk_reasons in Neo4j.")] = False,
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
    node_label: Annotated[str | None, typer.Option(help="Score every node of this label of any tables (built or "
                                                        "imported) from --labels id,label.")] = None,
) -> None:
    """Fraud-risk score with reason codes for every customer (supervised with labels, else anomaly);
    with --node-label, for any label of any tables from a labels file."""
    import pandas as pd

    if node_label is not None:
        _score_node_label(tables, labels, node_label, folds, seed, embeddings, no_embeddings)
        return

    if customer is not None:
        path = tables / "risk.parquet"
        if not path.exists():
            raise CommandError(f"{path} is missing: run `identigraph score {tables}` first")
        risk = pd.read_parquet(path)
        row = risk[risk["customer_id"] == customer]
        if row.empty:
            raise CommandError(f"customer {customer!r} is not in {path}")
        row = row.iloc[0]
        console.print(f"{customer}: risk {row.risk_score:.4f} ({row.risk_band}, {row.score_kind})"
                      + (f", labelled {row.label}" if row.label else ""))
        for number, reason in enumerate(row.risk_reasons, 1):
            console.print(f"  {number}. {reason}", soft_wrap=True)  # one line each, for grep and logs
        return
    from identigraph.scoring.pipeline import score_customers
    from identigraph.scoring.risk import RiskConfig

    config = RiskConfig(seed=seed, folds=folds, compare_gnn=compare_gnn)
    with progress_bar() as progress:
        task = progress.add_task("cross-validated training", total=folds + 1)
        result = score_customers(tables, tables, customer_embeddings(tables, embeddings, no_embeddings), labels,
                                 truth, config, supervised=False if unsupervised else None,
                                 progress=lambda done, total: progress.update(task, completed=done, total=total))
    print_risk(result)
    record_run(tables, "score", {"folds": folds, "seed": seed, "labels": labels, "unsupervised": unsupervised,
                                 "embeddings": not no_embeddings}, [tables / "nodes", tables / "edges"],
               [result.path, tables / "risk.json"])
    if to_neo4j:
        from identigraph.scoring.neo4j_io import write_risk

        written, where = write_to_neo4j(write_risk, tables, "writing risk scores", uri, user, password, database)
        console.print(f"set risk_score, risk_rank, risk_band, risk_reasons on {written:,} customers in {where}; "
                      "try `identigraph query top_risk_customers`")


def _score_node_label(tables: Path, labels: Path | None, label: str, folds: int, seed: int,
                      embeddings: Path | None, no_embeddings: bool) -> None:
    from identigraph.scoring.node_risk import score_nodes

    if labels is None:
        raise CommandError("--node-label needs --labels FILE with the columns id,label (1 = fraud or abuse, 0 = legitimate)")
    embeddings = label_embeddings(tables, embeddings, no_embeddings)
    with console.status(f"scoring {label} nodes ({folds}-fold cross-validation)"):
        result = score_nodes(tables, labels, label, folds=folds, seed=seed, embeddings_path=embeddings)
    console.print(f"{result.nodes:,} {label} nodes scored from {result.labelled:,} labels ({result.positives:,} "
                  f"positive; {result.unmatched_labels:,} label rows name no {label} node)")
    for name, figures in result.evaluation.items():
        console.print(f"  held out ({folds} folds), {name}: AUROC {figures['auroc']:.4f}, AUPRC {figures['auprc']:.4f}")
    if result.embedding_kept is not None:
        console.print(f"  the embeddings {'are' if result.embedding_kept else 'are not'} used: the held-out AUPRC is "
                      f"{'higher' if result.embedding_kept else 'not higher'} with them")
    console.print(f"wrote {result.path} and {result.path.parent / 'risk.json'} ({result.seconds:.1f}s)")
    record_run(tables, "score --node-label", {"node_label": label, "labels": labels, "folds": folds, "seed": seed},
               [tables / "nodes", tables / "edges", labels], [result.path])


def print_risk(result) -> None:
    kind = "supervised (calibrated probability)" if result.supervised else "anomaly score (unsupervised rank)"
    console.print(f"{result.customers:,} customers scored, {kind}: " +
                  ", ".join(f"{band} {n:,}" for band, n in result.band_counts.items()))
    if result.comparison is not None:
        c = result.comparison
        table = Table(title=f"held-out folds (whole identity components) against the {c.against}; gradient-boosted "
                            f"trees on {' + '.join(result.feature_groups)} beside behaviour only", title_justify="left")
        for name in ("model", "ROC-AUC", "AP", "precision@1%", "ring recall@2%"):
            table.add_column(name, justify="left" if name == "model" else "right")
        rows = [("graph", c.model), ("no-graph baseline", c.baseline)] + ([("graph, GNN classifier", c.gnn)]
                                                                          if c.gnn else [])
        for name, m in rows:
            ring = "" if m.ring_recall_at_2pct is None else f"{m.ring_recall_at_2pct:.3f}"
            table.add_row(name, f"{m.roc_auc:.4f}", f"{m.average_precision:.4f}", f"{m.precision_at_1pct:.4f}", ring)
        console.print(table)
        if c.gnn:
            console.print(f"held-out AP against the labels: trees {c.label_ap['trees']:.4f}, GNN {c.label_ap['gnn']:.4f}; "
                          + ("the trees score" if c.kept == "trees" else
                             "the GNN did better, but scoring with it is not built: the trees score"))
        for group, choice in result.group_selection.items():
            console.print(f"{group} features {'kept' if choice['kept'] else 'left out'}: cross-validated AP against "
                          f"the labels {choice['label_ap_with']:.4f} with them, {choice['label_ap_without']:.4f} without")
        if c.baseline.average_precision > 0:
            console.print(f"average precision {c.model.average_precision / c.baseline.average_precision:.2f}x the "
                          "no-graph baseline's")
    console.print(f"wrote {result.path} and risk.json in {result.seconds:.1f}s; "
                  "one customer: identigraph score TABLES --customer ID")
