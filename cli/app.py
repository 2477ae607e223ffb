"""``identigraph``: every command calls a library function and only formats its result."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    name="identigraph",
    help="Customer identity resolution, knowledge graph, embeddings and risk scoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
neo4j_app = typer.Typer(help="Run the local Neo4j 5.26 server (for machines without Docker).",
                        no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one line per error, for logs and grep


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@app.command()
def generate(
    customers: Annotated[int, typer.Option(help="Number of true customers.", min=1)],
    out: Annotated[Path, typer.Option(help="Folder to write the data set to.")],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 42,
    fraud_rate: Annotated[float, typer.Option(help="Share of customers that are fraudulent.", min=0.0, max=0.5)] = 0.01,
    chunk_size: Annotated[int, typer.Option(help="Customers generated per chunk (bounds memory).", min=1000)] = 100_000,
) -> None:
    """Write a synthetic multi-channel data set with ground truth (docs/data.md)."""
    from synthetic import GeneratorConfig, generate_dataset

    try:
        config = GeneratorConfig(customers=customers, seed=seed, fraud_rate=fraud_rate, chunk_size=chunk_size)
    except ValueError as error:
        raise fail(str(error))
    with _progress() as progress:
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


@app.command()
def profile(directory: Annotated[Path, typer.Argument(help="A folder written by `identigraph generate`.")]) -> None:
    """Print a data profile of a generated data set."""
    from synthetic.profile import profile_dataset

    if not directory.is_dir():
        raise fail(f"{directory} is not a folder; pass the --out folder of `identigraph generate`.")
    _print_profile(profile_dataset(directory))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Working folder for the demo's files.")] = Path(".demo"),
    customers: Annotated[int, typer.Option(help="Size of the synthetic data set.", min=1000)] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Run the whole pipeline that exists so far on synthetic data, with no server."""
    from synthetic import GeneratorConfig, generate_dataset
    from synthetic.profile import profile_dataset

    data_dir = out / "data"
    console.rule("1. synthetic multi-channel data")
    with _progress() as progress:
        task = progress.add_task("generating customers", total=customers)
        summary = generate_dataset(GeneratorConfig(customers=customers, seed=seed), data_dir,
                                   progress=lambda n: progress.advance(task, n))
    console.print(f"{summary.customers:,} customers in {summary.channel_records:,} channel records, "
                  f"written to {data_dir} in {summary.seconds:.1f}s")
    console.rule("2. data profile")
    _print_profile(profile_dataset(data_dir))


@neo4j_app.command("start")
def neo4j_start() -> None:
    """Start the local server unless it runs; wait until Bolt answers."""
    from graph import local_neo4j

    try:
        with console.status("starting Neo4j (the first start downloads its jars from Maven Central)"):
            status = local_neo4j.start()
    except local_neo4j.LocalNeo4jError as error:
        raise fail(str(error))
    console.print(f"Neo4j {status.version} {status.edition} is running at {status.uri} "
                  f"(pid {status.pid}, store {status.state_dir}); user neo4j, password in "
                  f"{status.state_dir / 'password'} or $NEO4J_PASSWORD")


@neo4j_app.command("stop")
def neo4j_stop() -> None:
    """Shut the local server down cleanly."""
    from graph import local_neo4j

    try:
        stopped = local_neo4j.stop()
    except local_neo4j.LocalNeo4jError as error:
        raise fail(str(error))
    console.print("Neo4j stopped." if stopped else "Neo4j was not running.")


@neo4j_app.command("status")
def neo4j_status() -> None:
    """Say whether the local server runs and answers; exit 1 when it does not."""
    from graph import local_neo4j

    status = local_neo4j.status()
    if not status.running:
        console.print(f"Neo4j is not running (store {status.state_dir}).")
        raise typer.Exit(1)
    console.print(f"Neo4j {status.version} {status.edition} is running at {status.uri} (pid {status.pid}).")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _print_profile(profile) -> None:
    for filename, (rows, columns) in profile.channels.items():
        table = Table(title=f"{filename}: {rows:,} rows", title_justify="left")
        for name, justify in (("column", "left"), ("complete", "right"), ("unique", "right"),
                              ("distinct", "right"), ("most frequent", "left")):
            table.add_column(name, justify=justify)
        for column in columns:
            table.add_row(column.column, f"{column.completeness:.1%}", f"{column.uniqueness:.1%}",
                          f"{column.distinct:,}", _mask(column.column, column.example))
        console.print(table)
    if profile.events:
        console.print("events: " + ", ".join(f"{name} {rows:,} rows" for name, rows in profile.events.items()))
    if profile.labels:
        console.print("fraud labels: " + ", ".join(f"{k} {v:,}" for k, v in profile.labels.items()))
    if profile.customers is not None:
        spread = ", ".join(f"{k}: {v:,}" for k, v in profile.records_per_customer.items())
        console.print(f"truth: {profile.customers:,} customers; records per customer {{{spread}}}; "
                      f"{profile.fraud_customers:,} fraudulent in {profile.rings:,} rings + lone")


PII_HINTS = ("name", "first", "surname", "email", "phone", "mobile", "dob", "birth", "address",
             "street", "postcode", "zip", "post_code", "loyalty")


def _mask(column: str, value: str | None) -> str:
    """Profiles are printed to logs: show the shape of personal values, not the values."""
    if value is None:
        return ""
    if any(hint in column.lower() for hint in PII_HINTS):
        return value[:1] + "*" * max(0, min(len(value) - 1, 8))
    return value


def main() -> None:
    app()


if __name__ == "__main__":
    main()
