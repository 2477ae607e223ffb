"""``identigraph explain``: the evidence behind one pair, field by field."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from identigraph.cli.output import console


def explain(
    directory: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    record_a: Annotated[str, typer.Argument(help="SOURCE:RECORD_ID (or a record id unique across sources).")],
    record_b: Annotated[str, typer.Argument(help="SOURCE:RECORD_ID of the other record.")],
) -> None:
    """Per-field evidence for one pair: values, agreement level, weight, and the total."""
    from identigraph.resolution.explain import explain_pair

    explanation = explain_pair(directory, record_a, record_b)
    table = Table(title=f"{explanation.record_a}  vs  {explanation.record_b}", title_justify="left")
    for name in ("comparison", "value A", "value B", "level", "weight", "running total"):
        table.add_column(name, justify="right" if name in ("weight", "running total") else "left")
    running = explanation.prior_weight
    table.add_row("prior (random pair)", "", "", "", f"{explanation.prior_weight:+.2f}", f"{running:+.2f}")
    for row in explanation.rows:
        running += row.weight
        colour = "green" if row.weight > 0 else "red" if row.weight < 0 else "dim"
        table.add_row(row.comparison, row.value_a, row.value_b, row.level, f"[{colour}]{row.weight:+.2f}[/]",
                      f"{running:+.2f}")
    console.print(table)
    verdict = "" if explanation.same_entity is None else (
        " — merged into one customer" if explanation.same_entity else " — kept apart")
    console.print(f"match weight {explanation.match_weight:+.2f}, probability {explanation.match_probability:.4f}{verdict}")
