"""``identigraph report``: one self-contained ``report.html`` (plots as inline SVG, no
scripts, no external files) about linkage, segments and risk.

- Linkage: match-weight distribution of the scored pairs (resolution's ``pairs.parquet``),
  customer (cluster) sizes, precision and recall against the truth when given.
- Segments: a 2-D projection of the customers coloured by segment, the profile table.
- Risk: score distribution by band, ROC and precision-recall curves of the held-out scores
  beside the no-graph baseline, and the riskiest rings drawn as small graphs (customers and
  the devices, phones, e-mails and addresses they share).

Every section is optional: it is left out, with a line saying which command produces it,
when its artifacts are missing.
"""
from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from identigraph.scoring.identity_graph import IDENTIFIER_EDGES  # noqa: E402

BAND_COLOURS = {"low": "#9ca3af", "medium": "#f59e0b", "high": "#ef4444", "critical": "#7f1d1d"}


@dataclass
class ReportResult:
    path: Path
    sections: list[str]
    figures: int


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG sits inside HTML


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, (list, np.ndarray)):
        return "; ".join(map(str, value))
    return "" if value is None else str(value)


def _linkage_section(tables: Path, resolution: Path | None, truth: Path | None) -> tuple[str, int]:
    customers = pd.read_parquet(tables / "nodes" / "Customer.parquet", columns=["record_count"])
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    parts, figures = [], 0
    if resolution is not None and (resolution / "pairs.parquet").exists():
        pairs = pd.read_parquet(resolution / "pairs.parquet", columns=["match_weight", "match_probability"])
        axes[0].hist(pairs["match_weight"], bins=80, color="#2563eb")
        axes[0].set(title=f"match weight of {len(pairs):,} scored pairs", xlabel="match weight (log2 Bayes factor)",
                    ylabel="pairs")
        axes[0].set_yscale("log")
    else:
        matched = pd.read_parquet(tables / "edges" / "MATCHED.parquet", columns=["weight"])
        axes[0].hist(matched["weight"], bins=80, color="#2563eb")
        axes[0].set(title=f"match weight of the {len(matched):,} merged pairs", xlabel="match weight", ylabel="pairs")
    sizes = customers["record_count"].value_counts().sort_index()
    axes[1].bar(sizes.index.astype(str), sizes.to_numpy(), color="#0d9488")
    axes[1].set(title=f"records per customer ({len(customers):,} customers)", xlabel="records", ylabel="customers")
    axes[1].set_yscale("log")
    parts.append(_svg(figure))
    figures += 1
    if resolution is not None and truth is not None and (truth / "records.parquet").exists():
        from identigraph.resolution.evaluation import evaluate_entities

        metrics = evaluate_entities(pd.read_parquet(resolution / "entities.parquet"),
                                    pd.read_parquet(truth / "records.parquet"), "record_id", "customer_id", "source")
        parts.append(_table(pd.DataFrame({
            "": ["pairwise", "B-cubed"],
            "precision": [metrics.pairwise_precision, metrics.bcubed_precision],
            "recall": [metrics.pairwise_recall, metrics.bcubed_recall],
            "F1": [metrics.pairwise_f1, metrics.bcubed_f1]})))
    return "".join(parts), figures


def _segments_section(tables: Path) -> tuple[str, int]:
    from sklearn.decomposition import PCA

    from identigraph.scoring.features import read_customer_embeddings
    from identigraph.scoring.segments import SegmentConfig, clustering_input, rfm_features

    segments = pd.read_parquet(tables / "segments.parquet")
    profiles = pd.read_parquet(tables / "segment_profiles.parquet")
    settings = json.loads((tables / "segments.json").read_text())
    rfm = rfm_features(tables)
    embedding = None
    if settings.get("embedding") and Path(settings["embedding"]).exists():
        embedding = read_customer_embeddings(Path(settings["embedding"]), rfm.index.to_numpy())
    x = clustering_input(rfm, embedding, SegmentConfig())
    points = PCA(n_components=2, random_state=0).fit_transform(x)
    label = segments.set_index("customer_id")["segment"].reindex(rfm.index).to_numpy()
    rng = np.random.default_rng(0)
    shown = rng.choice(len(points), size=min(8000, len(points)), replace=False)  # an SVG of 1M dots is unreadable
    figure, axis = plt.subplots(figsize=(8, 5.5))
    for name in profiles["segment"]:
        mask = label[shown] == name
        axis.scatter(points[shown][mask, 0], points[shown][mask, 1], s=4, alpha=0.6, label=name)
    axis.set(title=f"customers by segment (PCA of the clustering input; {len(shown):,} of {len(points):,} shown)",
             xlabel="component 1", ylabel="component 2")
    axis.legend(markerscale=4, fontsize=8, loc="best")
    text = (f"<p>k = {settings['k']}; stability (adjusted Rand index between seeds) "
            f"{settings['stability_ari']:.3f}.</p>")
    return text + _svg(figure) + _table(profiles), 1


def _ring_pictures(tables: Path, risk: pd.DataFrame, rings: int = 4) -> tuple[str, int]:
    """The riskiest groups of customers joined by shared identifiers, drawn as graphs."""
    from identigraph.graph.networkx_view import bipartite_graph, shared_identifier_groups

    groups = shared_identifier_groups(tables, tuple(IDENTIFIER_EDGES.values()), min_customers=3)
    score = risk.set_index("customer_id")["risk_score"]
    ranked = sorted(groups, key=lambda g: -float(score.reindex(list(g)).mean()))[:rings]
    if not ranked:
        return "<p>No group of three or more customers shares an identifier.</p>", 0
    graph = bipartite_graph(tables, tuple(IDENTIFIER_EDGES.values()))
    band = risk.set_index("customer_id")["risk_band"]
    figure, axes = plt.subplots(1, len(ranked), figsize=(4.2 * len(ranked), 4.2), squeeze=False)
    for axis, group in zip(axes[0], ranked):
        customers = {("Customer", c) for c in group}
        identifiers = {n for c in customers for n in graph.neighbors(c)
                       if sum(1 for m in graph.neighbors(n) if m in customers) >= 2}
        sub = graph.subgraph(customers | identifiers)
        layout = nx.spring_layout(sub, seed=1)
        colours = [BAND_COLOURS.get(band.get(key, "low"), "#9ca3af") if label == "Customer" else "#60a5fa"
                   for label, key in sub.nodes]
        sizes = [140 if label == "Customer" else 50 for label, _ in sub.nodes]
        shapes = {label for label, _ in sub.nodes if label != "Customer"}
        nx.draw_networkx(sub, layout, ax=axis, node_color=colours, node_size=sizes, with_labels=False,
                         edge_color="#cbd5e1")
        axis.set_title(f"{len(group)} customers, mean risk {score.reindex(list(group)).mean():.2f}\n"
                       f"sharing: {', '.join(sorted(shapes)).lower()}", fontsize=9)
        axis.set_axis_off()
    return _svg(figure), 1


def _risk_section(tables: Path, truth: Path | None) -> tuple[str, int]:
    risk = pd.read_parquet(tables / "risk.parquet")
    info = json.loads((tables / "risk.json").read_text())
    parts, figures = [], 0
    figure, axis = plt.subplots(figsize=(7, 3.4))
    for name, colour in BAND_COLOURS.items():
        values = risk.loc[risk["risk_band"] == name, "risk_score"]
        if len(values):
            axis.hist(values, bins=list(np.linspace(0, 1, 51)), color=colour, label=f"{name} ({len(values):,})")
    axis.set_yscale("log")
    axis.set(title=f"risk score ({info['score_kind']})", xlabel="score", ylabel="customers")
    axis.legend(fontsize=8)
    parts.append(_svg(figure))
    figures += 1
    if "oof_score" in risk:
        if truth is not None:
            from identigraph.scoring.pipeline import truth_for_customers

            target, _ = truth_for_customers(tables, risk["customer_id"].to_numpy(), truth)
            against = "truth"
        else:
            target, against = (risk["label"] == "fraud").to_numpy(float), "labels"
        figure, axes = plt.subplots(1, 2, figsize=(11, 4))
        for column, name, colour in (("oof_score", "graph + embeddings", "#dc2626"),
                                     ("baseline_oof_score", "no-graph baseline", "#6b7280")):
            fpr, tpr, _ = roc_curve(target, risk[column])
            precision, recall, _ = precision_recall_curve(target, risk[column])
            axes[0].plot(fpr, tpr, color=colour, label=name)
            axes[1].plot(recall, precision, color=colour, label=name)
        axes[0].plot([0, 1], [0, 1], ":", color="#9ca3af")
        axes[0].set(title=f"ROC, held-out folds against the {against}", xlabel="false positive rate",
                    ylabel="true positive rate")
        axes[1].set(title=f"precision-recall, held-out folds against the {against}", xlabel="recall",
                    ylabel="precision")
        for axis in axes:
            axis.legend(fontsize=8)
        parts.append(_svg(figure))
        figures += 1
        evaluation = info["evaluation"]
        parts.append(_table(pd.DataFrame([
            {"model": name, "ROC-AUC": m["roc_auc"], "average precision": m["average_precision"],
             "precision@1%": m["precision_at_1pct"], "ring recall@2%": m["ring_recall_at_2pct"]}
            for name, m in (("graph + embeddings", evaluation["model"]), ("no-graph baseline", evaluation["baseline"]))])))
    top = risk.sort_values("risk_score", ascending=False).head(15)
    parts.append("<h3>Highest risk</h3>" + _table(top[["customer_id", "risk_score", "risk_band", "risk_reasons"]]))
    rings, count = _ring_pictures(tables, risk)
    parts.append("<h3>Riskiest groups of customers sharing identifiers</h3>" + rings)
    return "".join(parts), figures + count


STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1150px;color:#111827}
h1{font-size:1.6rem}h2{border-bottom:1px solid #e5e7eb;padding-bottom:.3rem;margin-top:2.5rem}
table{border-collapse:collapse;font-size:.8rem;margin:1rem 0;display:block;overflow-x:auto}td,th{border:1px solid #e5e7eb;padding:.25rem .5rem;
text-align:left}th{background:#f3f4f6}svg{max-width:100%;height:auto}.missing{color:#6b7280}"""


def write_report(tables: Path, out: Path | None = None, resolution: Path | None = None,
                 truth: Path | None = None) -> ReportResult:
    tables = Path(tables)
    out = Path(out or tables / "report.html")
    sections, body, figures = [], [], 0
    builders = (
        ("Linkage", lambda: _linkage_section(tables, resolution, truth), tables / "nodes" / "Customer.parquet",
         "identigraph graph build"),
        ("Segments", lambda: _segments_section(tables), tables / "segments.parquet", "identigraph segment"),
        ("Risk", lambda: _risk_section(tables, truth), tables / "risk.parquet", "identigraph score"),
    )
    for title, build, needs, command in builders:
        if needs.exists():
            content, count = build()
            sections.append(title)
            figures += count
        else:
            content = f'<p class="missing">{needs.name} is missing: run <code>{command}</code> first.</p>'
        body.append(f"<h2>{title}</h2>{content}")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>identigraph report</title>'
            f"<style>{STYLE}</style></head><body><h1>identigraph report</h1>"
            f"<p>Graph tables: {html.escape(str(tables))}</p>{''.join(body)}</body></html>")
    out.write_text(page, encoding="utf-8")
    return ReportResult(out, sections, figures)
