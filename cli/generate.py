"""``identigraph generate``: a synthetic multi-channel data set with ground truth."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from identigraph.cli.output import console, progress_bar


def generate(
    customers: Annotated[int, typer.Option(help="Number of true customers.", min=1)],
    out: Annotated[Path, typer.Option(help="Folder to write the data set to.")],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 42,
    fraud_rate: Annotated[float, typer.Option(help="Share of customers that are fraudulent.", min=0.0, max=0.5)] = 0.01,
    chunk_size: Annotated[int, typer.Option(help="Customers generated per chunk (bounds memory).", min=1000)] = 100_000,
) -> None:
    """Write a synthetic multi-channel data set with ground truth (docs/data.md)."""
    from identigraph.synthetic import GeneratorConfig, generate_dataset

    config = GeneratorConfig(customers=customers, seed=seed, fraud_rate=fraud_rate, chunk_size=chunk_size)
    with progress_bar() as progress:
        task = progress.add_task("generating customers", total=customers)
        summary = generate_dataset(config, out, progress=lambda n: progress.advance(task, n))
    table = Table(title=f"Wrote {out} in {summary.seconds:.1f}s")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(f"{summary.customers:,} customers, {summary.fraud_customers:,} fraudulent "
                  f"({summary.rings:,} rings); resolve with: identigraph resolve {out} --config {out / 'linkage.toml'}")
