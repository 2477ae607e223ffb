"""The connection options every command that talks to Neo4j shares, and opening the driver."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.errors import CommandError
from identigraph.cli.output import console

NeoUri = Annotated[str | None, typer.Option("--neo4j-uri", envvar="NEO4J_URI",
                                              help="Bolt URI; default: $NEO4J_URI, else the local launcher's server.")]
NeoUser = Annotated[str, typer.Option("--neo4j-user", envvar="NEO4J_USER", help="User name.")]
NeoPassword = Annotated[str | None, typer.Option("--neo4j-password", envvar="NEO4J_PASSWORD", show_default=False,
                                                 help="Password (prefer $NEO4J_PASSWORD: options show in `ps`).")]
NeoDatabase = Annotated[str, typer.Option("--database", envvar="NEO4J_DATABASE", help="Database name.")]
NeoStore = Annotated[Path | None, typer.Option(
    "--store", envvar="IDENTIGRAPH_NEO4J_DIR", show_default=False,
    help="The local server's folder (database, log, pid, password). Default: .neo4j of the checkout "
         "around the working directory, else ./.neo4j.")]


def open_driver(uri: str | None, user: str, password: str | None, database: str):
    """(driver, settings) for the named server, else the environment's or the local launcher's;
    connectivity checked, so a command fails before its work, not in the middle of it."""
    from identigraph.graph.connection import (
        Neo4jNotConfigured,
        Neo4jSettings,
        check_uri,
        explain_neo4j_error,
        resolve_settings,
    )

    if uri:
        if not password:
            raise Neo4jNotConfigured(f"--neo4j-uri {uri} needs a password: export NEO4J_PASSWORD")
        settings = Neo4jSettings(uri=check_uri(uri), user=user, password=password, database=database)
    else:
        settings = resolve_settings()
    driver = None
    try:
        driver = settings.driver()
        driver.verify_connectivity()
    except Exception as error:  # the driver raises several types for one verdict: not usable
        if driver is not None:
            driver.close()
        raise CommandError(explain_neo4j_error(error, settings)) from error
    return driver, settings


def write_to_neo4j(write, tables: Path, doing: str, uri, user, password, database) -> tuple[int, str]:
    """Run a write-back function (driver, tables, database) -> count; returns it and the URI."""
    driver, settings = open_driver(uri, user, password, database)
    with driver, console.status(doing):
        return write(driver, tables, settings.database), settings.uri
