"""``identigraph report``: one self-contained report.html."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.errors import CommandError
from identigraph.cli.output import console


def report(
    tables: Annotated[Path, typer.Argument(help="The --out folder of `identigraph graph build`.")],
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default: TABLES/report.html).")] = None,
    resolution: Annotated[Path | None, typer.Option(help="The --out folder of `identigraph resolve` (match weights, "
                                                         "precision/recall).")] = None,
    truth: Annotated[Path | None, typer.Option(help="The generator's truth/ folder, for precision, recall and "
                                                    "curves against the truth.")] = None,
) -> None:
    """Write one self-contained report.html: linkage, segments, risk (plots inline)."""
    from identigraph.scoring.report import write_report

    if not tables.is_dir():
        raise CommandError(f"{tables} is not a folder; pass the --out folder of `identigraph graph build`")
    with console.status("drawing the report"):
        result = write_report(tables, out, resolution, truth)
    console.print(f"wrote {result.path} ({len(result.sections)} sections: {', '.join(result.sections)}; "
                  f"{result.figures} figures)")
