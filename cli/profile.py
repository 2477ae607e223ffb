"""``identigraph profile``: a data profile of a generated data set."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.errors import CommandError
from identigraph.cli.output import print_profile


def profile(directory: Annotated[Path, typer.Argument(help="A folder written by `identigraph generate`.")]) -> None:
    """Print a data profile of a generated data set."""
    from identigraph.synthetic.profile import profile_dataset

    if not directory.is_dir():
        raise CommandError(f"{directory} is not a folder; pass the --out folder of `identigraph generate`.")
    print_profile(profile_dataset(directory))
