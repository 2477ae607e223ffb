"""``identigraph query``: a cookbook query or ad-hoc Cypher, read-only."""
from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from identigraph.cli.errors import CommandError
from identigraph.cli.neo4j_options import NeoDatabase, NeoPassword, NeoUri, NeoUser, open_driver
from identigraph.cli.output import console, print_rows


def query(
    name: Annotated[str | None, typer.Argument(help="A cookbook query (cypher/*.cypher); leave out to list them.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="key=value, repeatable.")] = None,
    cypher: Annotated[str | None, typer.Option(help="Ad-hoc Cypher instead of a cookbook query (read-only).")] = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
) -> None:
    """Run a cookbook query or ad-hoc Cypher, read-only."""
    from identigraph.graph.cookbook import cookbook, run_cookbook_query, run_read_query

    if output not in ("table", "csv", "json"):
        raise CommandError(f"--format {output!r}: use table, csv or json")
    if name is None and cypher is None:
        listing = Table(title="cookbook (cypher/)", title_justify="left")
        listing.add_column("query")
        listing.add_column("parameters")
        listing.add_column("answers")
        for query_name, entry in cookbook().items():
            listing.add_row(query_name, ", ".join(f"{p.name}" + (f"={p.default}" if p.default else "")
                                                   for p in entry.parameters), entry.description)
        console.print(listing)
        return
    given: dict[str, str] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CommandError(f"--param {item!r}: write key=value")
        given[key.strip()] = value
    driver, settings = open_driver(uri, user, password, database)
    with driver:
        if cypher is not None:
            columns, rows = run_read_query(driver, cypher, given, settings.database)
        else:
            columns, rows = run_cookbook_query(driver, name or "", given, settings.database)
    print_rows(columns, rows, output)
