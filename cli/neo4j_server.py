"""``identigraph neo4j start | stop | status | run``: the local Neo4j 5.26 server, for machines
without Docker."""
from __future__ import annotations

from typing import Annotated

import typer

from identigraph.cli.errors import CommandError
from identigraph.cli.neo4j_options import NeoStore
from identigraph.cli.output import console

RUN_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


def neo4j_start(store: NeoStore = None) -> None:
    """Start the local server unless it runs; wait until Bolt answers."""
    from identigraph.graph import local_neo4j

    with console.status("starting Neo4j (the first start downloads its jars from Maven Central)"):
        status = local_neo4j.start(store=store)
    console.print(f"Neo4j {status.version} {status.edition} is running at {status.uri} "
                  f"(pid {status.pid}, store {status.state_dir}); user neo4j, password in "
                  f"{local_neo4j.state_dir(store) / 'password'} or $NEO4J_PASSWORD")


def neo4j_stop(store: NeoStore = None) -> None:
    """Shut the local server down cleanly (nothing to do when it does not run)."""
    from identigraph.graph import local_neo4j

    stopped = local_neo4j.stop(store=store)
    console.print(f"Neo4j stopped (store {local_neo4j.state_dir(store)})." if stopped
                  else f"Neo4j was not running (store {local_neo4j.state_dir(store)}).")


def neo4j_status(store: NeoStore = None) -> None:
    """Say whether the local server runs and answers; exit 1 when it does not."""
    from identigraph.graph import local_neo4j

    status = local_neo4j.status(store)
    if not status.running:
        console.print(f"Neo4j is not running (store {status.state_dir}).")
        raise typer.Exit(1)
    console.print(f"Neo4j {status.version} {status.edition} is running at {status.uri} "
                  f"(pid {status.pid}, store {status.state_dir}).")


def neo4j_run(command: Annotated[list[str], typer.Argument(help="The command, after --.")],
              store: NeoStore = None) -> None:
    """Run a command (`identigraph neo4j run -- pytest`) with the local server up; stop the
    server afterwards only if this started it. Exits with the command's status."""
    from identigraph.graph import local_neo4j

    try:
        code = local_neo4j.run_with_server(command, store)
    except FileNotFoundError as error:
        raise CommandError(f"cannot run {command[0]!r}: {error.strerror}") from error
    raise typer.Exit(code)
