"""The options that pick the embeddings ``score`` and ``segment`` use, and the file they name."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.errors import CommandError


def default_embeddings(tables: Path) -> Path:
    """Where `identigraph embed TABLES` writes its embeddings."""
    return tables / "embeddings" / "embeddings.parquet"


def customer_embeddings(tables: Path, embeddings: Path | None, no_embeddings: bool) -> Path | None:
    """--embeddings, else the file `identigraph embed` writes; it must exist unless left out."""
    if no_embeddings:
        return None
    path = embeddings or default_embeddings(tables)
    if not path.exists():
        raise CommandError(f"{path} is missing: train embeddings first (`identigraph embed {tables}`), pass "
                           "--embeddings, or run without them (--no-embeddings)")
    return path


EmbeddingsOption = Annotated[Path | None, typer.Option(help="embeddings.parquet (default: TABLES/embeddings/).")]
NoEmbeddings = Annotated[bool, typer.Option("--no-embeddings", help="Leave the GNN embeddings out.")]


def label_embeddings(tables: Path, embeddings: Path | None, no_embeddings: bool) -> Path | None:
    """For any label: --embeddings, else the default file where `identigraph embed` wrote one."""
    default = default_embeddings(tables)
    return None if no_embeddings else embeddings or (default if default.exists() else None)
