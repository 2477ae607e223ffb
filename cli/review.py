"""``identigraph review export | import``: clerical review of the uncertain pairs."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.audit import record_run
from identigraph.cli.output import console


def review_export(
    directory: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    out: Annotated[Path, typer.Option(help="CSV to write: one uncertain pair per row, a decision column to fill.")],
    limit: Annotated[int | None, typer.Option(help="At most this many pairs, the most uncertain.", min=1)] = None,
) -> None:
    """Pairs between the auto-reject and auto-accept thresholds, most uncertain first."""
    from identigraph.resolution.review import export_uncertain_pairs

    written = export_uncertain_pairs(directory, out, limit)
    console.print(f"wrote {written:,} pairs to {out}: fill the decision column with match or non-match, then "
                  f"`identigraph review import {directory} {out}`")
    record_run(directory, "review export", {"limit": limit}, [directory / "pairs.parquet"], [out])


def review_import(
    directory: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    decisions: Annotated[Path, typer.Argument(help="The exported CSV with its decision column filled in.")],
    retrain: Annotated[bool, typer.Option(help="Also re-estimate m from the pairs decided match and rescore.")] = False,
) -> None:
    """Apply review decisions as must-link / cannot-link constraints and re-cluster."""
    from identigraph.resolution.review import apply_review

    with console.status("re-clustering with the decisions"):
        result = apply_review(directory, decisions, retrain)
    console.print(f"{result.decisions:,} decisions on file ({result.must_links:,} match, {result.cannot_links:,} "
                  f"non-match): {result.entities_before:,} -> {result.entities_after:,} customers, "
                  f"{result.merges:,} merges, {result.splits:,} splits (lineage.parquet)")
    if result.retrained:
        console.print("m re-estimated from the reviewed matches; largest change per comparison: "
                      + ", ".join(f"{k} {v:.3f}" for k, v in result.m_change.items())
                      + "; the model before is model.before-review.json")
    record_run(directory, "review import", {"retrain": retrain}, [decisions], [directory])
