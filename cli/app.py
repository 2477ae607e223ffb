"""The ``identigraph`` command: one Typer app, one module per command or command group
(``identigraph.cli.resolve``, ``identigraph.cli.graph`` ...), each a thin shell over a
library function. A command's failure is turned into one line here, and only here."""
from __future__ import annotations

import os

import typer
from rich.markup import escape

from identigraph.cli import (
    demo,
    embed,
    evaluate,
    explain,
    forget,
    generate,
    graph,
    load,
    neo4j_server,
    profile,
    query,
    report,
    resolve,
    review,
    score,
    segment,
    serve,
)
from identigraph.cli.errors import one_line
from identigraph.cli.output import err_console

DEBUG_ENV = "IDENTIGRAPH_DEBUG"  # set to 1 for the traceback behind a one-line error


class OneLineErrors(typer.core.TyperGroup):
    """A mistake in the options or the inputs, a missing extra, or a Neo4j that cannot be used
    ends the command with ``error: <what was wrong and what to do>`` and status 1; anything
    else is a bug and keeps its traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as error:
            message = one_line(error)
            if message is None or os.environ.get(DEBUG_ENV):
                raise
            err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
            raise typer.Exit(1) from None


def _group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True)


app = typer.Typer(
    cls=OneLineErrors,
    name="identigraph",
    help="Customer identity resolution, knowledge graph, embeddings and risk scoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (generate.generate, resolve.resolve, explain.explain, evaluate.evaluate, profile.profile, demo.demo,
                load.load, query.query, embed.embed, segment.segment, score.score, forget.forget, report.report,
                serve.serve):
    app.command()(command)

graph_app = _group("Build the knowledge graph's tables and set up its Neo4j schema.")
graph_app.command("build")(graph.graph_build)
graph_app.command("import")(graph.graph_import)
graph_app.command("init")(graph.graph_init)
app.add_typer(graph_app, name="graph")

review_app = _group("Clerical review of uncertain pairs: export them, import the decisions.")
review_app.command("export")(review.review_export)
review_app.command("import")(review.review_import)
app.add_typer(review_app, name="review")

api_key_app = _group("API keys for `identigraph serve`: scopes read, write, risk, admin.")
api_key_app.command("add")(serve.api_key_add)
app.add_typer(api_key_app, name="api-key")

neo4j_app = _group("Run the local Neo4j 5.26 server (for machines without Docker).")
neo4j_app.command("start")(neo4j_server.neo4j_start)
neo4j_app.command("stop")(neo4j_server.neo4j_stop)
neo4j_app.command("status")(neo4j_server.neo4j_status)
neo4j_app.command("run", context_settings=neo4j_server.RUN_CONTEXT)(neo4j_server.neo4j_run)
app.add_typer(neo4j_app, name="neo4j")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
