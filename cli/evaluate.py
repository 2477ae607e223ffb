"""``identigraph evaluate``: the clusters of a run against a truth file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.errors import CommandError
from identigraph.cli.output import print_metrics


def evaluate(
    directory: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    truth: Annotated[Path, typer.Option(help="CSV or Parquet with the true entity of each record.")],
    truth_id: Annotated[str, typer.Option(help="Column of the record id in the truth file.")],
    truth_entity: Annotated[str, typer.Option(help="Column of the true entity in the truth file.")],
    truth_source: Annotated[str | None, typer.Option(help="Column of the source, where record ids repeat across sources.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Pairwise precision, recall, F1 and B-cubed of the final clusters against a truth."""
    import pandas as pd

    from identigraph.resolution.evaluation import evaluate_entities

    entities_path = directory / "entities.parquet"
    if not entities_path.exists():
        raise CommandError(f"{entities_path} is missing; pass the --out folder of `identigraph resolve`")
    if not truth.exists():
        raise CommandError(f"{truth}: no such truth file")
    frame = pd.read_parquet(truth) if truth.suffix == ".parquet" else pd.read_csv(truth, dtype=str)
    for column in filter(None, (truth_id, truth_entity, truth_source)):
        if column not in frame.columns:
            raise CommandError(f"{truth} has no column {column!r}; its columns are {list(frame.columns)}")
    metrics = evaluate_entities(pd.read_parquet(entities_path), frame, truth_id, truth_entity, truth_source)
    if as_json:
        print(json.dumps(metrics.as_dict(), indent=2))
        return
    print_metrics(metrics)
