"""``identigraph``: every command calls a library function and only formats its result."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from identigraph.cli.audit import record_run
from identigraph.cli.graph_import import graph_import

class Neo4jErrorsInOneLine(typer.core.TyperGroup):
    """A Neo4j or driver error that escapes a command (the server stopped, retries ran out)
    ends the command with one line saying what to do, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as error:
            if not type(error).__module__.startswith("neo4j."):
                raise
            from identigraph.graph.connection import explain_neo4j_error

            raise fail(explain_neo4j_error(error))


app = typer.Typer(
    cls=Neo4jErrorsInOneLine,
    name="identigraph",
    help="Customer identity resolution, knowledge graph, embeddings and risk scoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
neo4j_app = typer.Typer(help="Run the local Neo4j 5.26 server (for machines without Docker).",
                        no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")
graph_app = typer.Typer(help="Build the knowledge graph's tables and set up its Neo4j schema.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")
review_app = typer.Typer(help="Clerical review of uncertain pairs: export them, import the decisions.",
                         no_args_is_help=True)
app.add_typer(review_app, name="review")
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
    from identigraph.synthetic import GeneratorConfig, generate_dataset

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
def resolve(
    inputs: Annotated[list[Path], typer.Argument(help="CSV, JSONL or Parquet files, or folders of them.")],
    out: Annotated[Path, typer.Option(help="Folder for entities, pairs, golden records, model, profile.")],
    config: Annotated[Path | None, typer.Option(help="linkage.toml; inferred from the inputs when left out.")] = None,
    model: Annotated[Path | None, typer.Option(help="model.json of an earlier run: score with it, no training.")] = None,
    pseudonymize: Annotated[bool, typer.Option(
        "--pseudonymize", help="Write keyed hashes (HMAC, key from $IDENTIGRAPH_PSEUDONYM_KEY) instead of names, "
                               "e-mails, phones, dates of birth, addresses and national ids; linkage runs on the "
                               "clear values in memory.")] = False,
    previous: Annotated[Path | None, typer.Option(help="The --out folder of an earlier run: link INPUTS (a new "
                                                       "batch) against its customers with its model, keeping their "
                                                       "ids; merges and splits go to lineage.parquet. The "
                                                       "customers are those a full rerun with that model gives.")] = None,
    fast: Annotated[bool, typer.Option("--fast", help="With --previous: keep the earlier pairs and customers as "
                                                      "they were and score only the new records' pairs (quicker; "
                                                      "earlier pairs keep the statistics of their run).")] = False,
    forgotten: Annotated[Path | None, typer.Option(help="forgotten.jsonl written by `identigraph forget`: those "
                                                        "records are quarantined, not linked (default: "
                                                        "OUT/forgotten.jsonl when there is one).")] = None,
) -> None:
    """Link records across channels into customers (docs/cli.md)."""
    import json

    from identigraph.resolution.config import ConfigError, config_to_toml, load_config
    from identigraph.resolution.infer import config_from_inference, inference_notes, infer_sources
    from identigraph.resolution.ingest import input_files
    from identigraph.resolution.io import InputFileError
    from identigraph.resolution.linker import Linker
    from identigraph.resolution.model import FellegiSunterModel
    from identigraph.resolution.erasure import read_forgotten
    from identigraph.resolution.privacy import pseudonym_key_from_env

    try:
        if config is None and previous is not None and (previous / "linkage.toml").exists():
            config = previous / "linkage.toml"  # the batch is mapped as the earlier run's inputs were
        if config is not None:
            linkage = load_config(config)
        else:
            inferred = infer_sources(input_files(inputs, None))
            notes = inference_notes(inferred)
            linkage = config_from_inference(inferred)
            out.mkdir(parents=True, exist_ok=True)
            (out / "linkage.toml").write_text(config_to_toml(
                linkage, header=f"Inferred by identigraph resolve from {', '.join(map(str, inputs))}.\n"
                                f"Check the types, edit, and rerun with --config.\n{notes}"))
            console.print(notes, markup=False, highlight=False)
            console.print(f"No --config: inferred one and wrote it to {out / 'linkage.toml'}")
        key = pseudonym_key_from_env() if pseudonymize else None
        erased = read_forgotten(forgotten) if forgotten else None
        saved = FellegiSunterModel.from_json(json.loads(model.read_text())) if model else None
        if fast and previous is None:
            raise ValueError("--fast links a batch against an earlier run: give --previous DIR")
        if previous is not None and (pseudonymize or model or forgotten):
            raise ValueError("--previous uses the earlier run's model and forgotten.jsonl, on clear values: leave "
                             "out --model, --forgotten and --pseudonymize")
        with console.status("resolving") as status:
            linker = Linker(linkage, progress=lambda step: status.update(step))
            result = (linker.run_incremental(inputs, previous, out, fast=fast) if previous is not None else
                      linker.run(inputs, out, model=saved, pseudonym_key=key, forgotten=erased))
    except (ConfigError, InputFileError, FileNotFoundError, ValueError) as error:
        raise fail(str(error))
    _print_resolution(result)
    record_run(out, "resolve", {"config": config, "model": model, "pseudonymize": pseudonymize,
                                "forgotten": forgotten, "previous": previous, "fast": fast},
               [*inputs, *([config] if config else []), *([previous / "model.json"] if previous else [])], [out])


@app.command()
def explain(
    directory: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    record_a: Annotated[str, typer.Argument(help="SOURCE:RECORD_ID (or a record id unique across sources).")],
    record_b: Annotated[str, typer.Argument(help="SOURCE:RECORD_ID of the other record.")],
) -> None:
    """Per-field evidence for one pair: values, agreement level, weight, and the total."""
    from identigraph.resolution.explain import explain_pair

    try:
        explanation = explain_pair(directory, record_a, record_b)
    except (KeyError, FileNotFoundError) as error:
        raise fail(str(error).strip("'\""))
    table = Table(title=f"{explanation.record_a}  vs  {explanation.record_b}", title_justify="left")
    for name, justify in (("comparison", "left"), ("value A", "left"), ("value B", "left"), ("level", "left"),
                          ("weight", "right"), ("running total", "right")):
        table.add_column(name, justify=justify)
    running = explanation.prior_weight
    table.add_row("prior (random pair)", "", "", "", f"{explanation.prior_weight:+.2f}", f"{running:+.2f}")
    for row in explanation.rows:
        running += row.weight
        colour = "green" if row.weight > 0 else "red" if row.weight < 0 else "dim"
        table.add_row(row.comparison, row.value_a, row.value_b, row.level, f"[{colour}]{row.weight:+.2f}[/]",
                      f"{running:+.2f}")
    console.print(table)
    verdict = "" if explanation.same_entity is None else (
        " — merged into one customer" if explanation.same_entity else " — kept apart")
    console.print(f"match weight {explanation.match_weight:+.2f}, probability {explanation.match_probability:.4f}{verdict}")


@app.command()
def evaluate(
    directory: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    truth: Annotated[Path, typer.Option(help="CSV or Parquet with the true entity of each record.")],
    truth_id: Annotated[str, typer.Option(help="Column of the record id in the truth file.")],
    truth_entity: Annotated[str, typer.Option(help="Column of the true entity in the truth file.")],
    truth_source: Annotated[str | None, typer.Option(help="Column of the source, where record ids repeat across sources.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Pairwise precision, recall, F1 and B-cubed of the final clusters against a truth."""
    import json

    import pandas as pd

    from identigraph.resolution.evaluation import evaluate_entities

    entities_path = directory / "entities.parquet"
    if not entities_path.exists():
        raise fail(f"{entities_path} is missing; pass the --out folder of `identigraph resolve`")
    if not truth.exists():
        raise fail(f"{truth}: no such truth file")
    frame = pd.read_parquet(truth) if truth.suffix == ".parquet" else pd.read_csv(truth, dtype=str)
    for column in filter(None, (truth_id, truth_entity, truth_source)):
        if column not in frame.columns:
            raise fail(f"{truth} has no column {column!r}; its columns are {list(frame.columns)}")
    try:
        metrics = evaluate_entities(pd.read_parquet(entities_path), frame, truth_id, truth_entity, truth_source)
    except ValueError as error:
        raise fail(str(error))
    if as_json:
        print(json.dumps(metrics.as_dict(), indent=2))
        return
    _print_metrics(metrics)


@app.command()
def profile(directory: Annotated[Path, typer.Argument(help="A folder written by `identigraph generate`.")]) -> None:
    """Print a data profile of a generated data set."""
    from identigraph.synthetic.profile import profile_dataset

    if not directory.is_dir():
        raise fail(f"{directory} is not a folder; pass the --out folder of `identigraph generate`.")
    _print_profile(profile_dataset(directory))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Working folder for the demo's files.")] = Path(".demo"),
    customers: Annotated[int, typer.Option(help="Size of the synthetic data set.", min=1000)] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Run the whole pipeline on synthetic data, with no server: generate, profile, resolve,
    evaluate against the truth, build the graph tables, train embeddings, score fraud risk,
    segment, and write report.html; with NEO4J_URI set, also load everything into Neo4j and
    run cookbook queries."""
    from identigraph.synthetic import GeneratorConfig, generate_dataset
    from identigraph.synthetic.profile import profile_dataset

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

    import pandas as pd

    from identigraph.resolution.config import load_config
    from identigraph.resolution.evaluation import evaluate_entities
    from identigraph.resolution.linker import Linker

    console.rule("3. identity resolution")
    resolution_dir = out / "resolution"
    with console.status("resolving") as status:
        result = Linker(load_config(data_dir / "linkage.toml"), progress=lambda step: status.update(step)).run(
            [data_dir], resolution_dir)
    _print_resolution(result)
    truth = pd.read_parquet(data_dir / "truth" / "records.parquet")
    metrics = evaluate_entities(pd.read_parquet(resolution_dir / "entities.parquet"), truth, "record_id",
                                "customer_id", "source")
    console.print("accuracy against the generator's truth:")
    _print_metrics(metrics)

    from identigraph.graph.build import build_graph_tables
    from identigraph.graph.networkx_view import shared_identifier_groups

    console.rule("4. knowledge graph (embedded tables)")
    tables_dir = out / "graph"
    with console.status("building graph tables"):
        graph_summary = build_graph_tables(resolution_dir, tables_dir, data_dir)
    _print_graph_summary(graph_summary)
    groups = shared_identifier_groups(tables_dir)
    sizes = ", ".join(str(len(g)) for g in groups[:10])
    console.print(f"customers joined by shared devices or phones (networkx, no server): {len(groups):,} groups "
                  f"of 3 or more; largest: {sizes}")
    from identigraph.embeddings.pipeline import embed as train_embeddings
    from identigraph.embeddings.train import TrainingConfig

    console.rule("5. GNN embeddings (heterogeneous GraphSAGE, link prediction)")
    with _progress() as progress:
        task = progress.add_task("training", total=TrainingConfig().epoch_count)
        embedded = train_embeddings(tables_dir, tables_dir / "embeddings",
                                    progress=lambda epoch, loss: progress.update(task, completed=epoch))
    _print_link_report(embedded.report)

    from identigraph.scoring.pipeline import score_customers
    from identigraph.scoring.report import write_report
    from identigraph.scoring.segments import segment_customers

    console.rule("6. fraud risk (graph features + embeddings, reason codes)")
    embeddings_path = tables_dir / "embeddings" / "embeddings.parquet"
    with _progress() as progress:
        task = progress.add_task("cross-validated training", total=6)
        risk = score_customers(tables_dir, tables_dir, embeddings_path, truth_dir=data_dir / "truth",
                               progress=lambda done, total: progress.update(task, completed=done, total=total))
    _print_risk(risk)
    console.rule("7. segments")
    with console.status("segmenting customers"):
        segments = segment_customers(tables_dir, tables_dir, embeddings_path, risk_path=tables_dir / "risk.parquet")
    _print_segments(segments)
    with console.status("drawing the report"):
        report_file = write_report(tables_dir, out / "report.html", resolution_dir, data_dir / "truth")

    import os

    if os.environ.get("NEO4J_URI"):
        from identigraph.graph.cookbook import run_cookbook_query
        from identigraph.graph.load import load_graph

        console.rule("8. Neo4j")
        driver, settings = _neo4j_driver(None, "neo4j", None, "neo4j")
        with driver:
            # The demo's graph replaces the model's nodes there (other labels are kept).
            with console.status(f"loading into {settings.uri} (replacing identigraph's nodes)"):
                loaded = load_graph(tables_dir, driver, settings.database, replace=True)
            console.print(f"loaded {loaded.total:,} nodes and relationships in {loaded.seconds:.1f}s "
                          f"({loaded.per_second:,.0f} per second)")
            top = graph_summary.nodes and pd.read_parquet(tables_dir / "nodes" / "Customer.parquet",
                                                          columns=["customer_id", "record_count"])
            customer = top.sort_values(["record_count", "customer_id"], ascending=[False, True])["customer_id"].iloc[0]
            console.print(f"cookbook: cross_channel_journey --param customer_id={customer}")
            _print_rows(*run_cookbook_query(driver, "cross_channel_journey", {"customer_id": customer},
                                            settings.database), "table")
            console.print("cookbook: shared_devices --param limit=5")
            _print_rows(*run_cookbook_query(driver, "shared_devices", {"limit": "5"}, settings.database), "table")
            from identigraph.embeddings.neo4j_io import write_customer_embeddings

            write_customer_embeddings(driver, embeddings_path, settings.database)
            console.print(f"cookbook: similar_customers --param customer_id={customer} --param k=5")
            _print_rows(*run_cookbook_query(driver, "similar_customers", {"customer_id": customer, "k": "5"},
                                            settings.database), "table")
            from identigraph.scoring.neo4j_io import write_risk, write_segments

            write_segments(driver, tables_dir, settings.database)
            write_risk(driver, tables_dir, settings.database)
            console.print("cookbook: top_risk_customers --param limit=5")
            _print_rows(*run_cookbook_query(driver, "top_risk_customers", {"limit": "5"}, settings.database), "table")
    else:
        console.print("set NEO4J_URI (and NEO4J_PASSWORD) to also load the graph into Neo4j and run the cookbook")
    console.print(f"report: {report_file.path.resolve()}")


NeoUri = Annotated[str | None, typer.Option("--neo4j-uri", envvar="NEO4J_URI",
                                              help="Bolt URI; default: $NEO4J_URI, else the local launcher's server.")]
NeoUser = Annotated[str, typer.Option("--neo4j-user", envvar="NEO4J_USER", help="User name.")]
NeoPassword = Annotated[str | None, typer.Option("--neo4j-password", envvar="NEO4J_PASSWORD", show_default=False,
                                                 help="Password (prefer $NEO4J_PASSWORD: options show in `ps`).")]
NeoDatabase = Annotated[str, typer.Option("--database", envvar="NEO4J_DATABASE", help="Database name.")]


def _neo4j_driver(uri: str | None, user: str, password: str | None, database: str):
    """(driver, settings) for the named server, else the environment's or the local launcher's."""
    from identigraph.graph.connection import (Neo4jNotConfigured, Neo4jSettings, check_uri, explain_neo4j_error,
                                  resolve_settings)

    try:
        if uri:
            if not password:
                raise Neo4jNotConfigured(f"--neo4j-uri {uri} needs a password: export NEO4J_PASSWORD")
            settings = Neo4jSettings(uri=check_uri(uri), user=user, password=password, database=database)
        else:
            settings = resolve_settings()
    except Neo4jNotConfigured as error:
        raise fail(str(error))
    driver = None
    try:
        driver = settings.driver()
        driver.verify_connectivity()
    except Exception as error:  # the driver raises several types for one verdict: not usable
        if driver is not None:
            driver.close()
        raise fail(explain_neo4j_error(error, settings))
    return driver, settings


@graph_app.command("build")
def graph_build(
    resolved: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    out: Annotated[Path, typer.Option(help="Folder for nodes/*.parquet, edges/*.parquet, quarantine.parquet.")],
    events: Annotated[Path | None, typer.Option(help="Folder with orders, sessions, products (and fraud_labels).")] = None,
) -> None:
    """Turn resolution outputs and events into node and edge tables (the embedded graph)."""
    from identigraph.graph.build import GraphInputError, build_graph_tables

    try:
        with console.status("building graph tables"):
            summary = build_graph_tables(resolved, out, events)
    except GraphInputError as error:
        raise fail(str(error))
    _print_graph_summary(summary)
    record_run(out, "graph build", {"events": events}, [resolved, *([events] if events else [])],
               [out, out / "nodes", out / "edges"])


graph_app.command("import")(graph_import)


@graph_app.command("init")
def graph_init(uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None,
               database: NeoDatabase = "neo4j") -> None:
    """Create the constraints and indexes of cypher/schema.cypher (idempotent)."""
    from identigraph.graph.load import init_schema

    driver, settings = _neo4j_driver(uri, user, password, database)
    with driver:
        statements = init_schema(driver, settings.database)
    console.print(f"schema applied to {settings.uri} ({len(statements)} constraints and indexes, IF NOT EXISTS)")


@app.command()
def load(
    tables: Annotated[Path, typer.Argument(help="The --out folder of `identigraph graph build`.")],
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
    batch_size: Annotated[int, typer.Option(help="Rows per transaction.", min=1)] = 5000,
    replace: Annotated[bool, typer.Option(help="First delete the nodes of the graph model's labels (not others), "
                                               "so the graph is exactly these tables.")] = False,
    bulk: Annotated[bool, typer.Option(help="Replace the local launcher's database by an offline import "
                                            "(neo4j-admin's importer): a first load, many times faster.")] = False,
    delta_from: Annotated[Path | None, typer.Option(help="The tables loaded last time: write only what changed "
                                                         "since (new and changed rows, removed nodes and "
                                                         "relationships deleted).")] = None,
) -> None:
    """Load the graph tables into Neo4j with batched MERGE (safe to rerun), or --bulk import them."""
    from identigraph.graph.load import GraphTablesError, LoadInterrupted, load_graph, table_counts

    try:
        node_counts, edge_counts = table_counts(tables)
    except GraphTablesError as error:
        raise fail(str(error))
    if bulk:
        from identigraph.graph import local_neo4j
        from identigraph.graph.bulk_import import bulk_import

        if uri:
            raise fail(f"--bulk writes the local launcher's store files and cannot reach {uri}; load a server "
                       "elsewhere without --bulk, or run neo4j-admin database import on its machine")
        try:
            with console.status("bulk import") as status:
                summary = bulk_import(tables, progress=status.update)
        except (local_neo4j.LocalNeo4jError, GraphTablesError) as error:
            raise fail(str(error))
        console.print(f"imported {sum(summary.nodes.values()):,} nodes and {sum(summary.relationships.values()):,} "
                      f"relationships in {summary.seconds:.1f}s ({summary.per_second:,.0f} per second; CSV files "
                      f"{summary.files_seconds:.1f}s before that) into {local_neo4j.running_settings().uri}")
        record_run(tables, "load --bulk", {"uri": local_neo4j.running_settings().uri},
                   [tables / "nodes", tables / "edges"], [])
        return
    if delta_from is not None:
        from identigraph.graph.delta import load_delta

        if bulk or replace:
            raise fail("--delta-from writes only the changes: leave out --bulk and --replace")
        try:
            table_counts(delta_from)
        except GraphTablesError as error:
            raise fail(f"--delta-from: {error}")
        driver, settings = _neo4j_driver(uri, user, password, database)
        with driver, console.status("comparing the tables and writing the changes"):
            try:
                delta = load_delta(delta_from, tables, driver, settings.database, batch_size)
            except LoadInterrupted as error:
                raise fail(str(error))
        console.print(f"delta from {delta_from}: {sum(delta.upserted.values()):,} rows new or changed, "
                      f"{sum(delta.deleted.values()):,} removed, {sum(delta.unchanged.values()):,} unchanged and "
                      f"not written; {delta.seconds:.1f}s into {settings.uri}")
        record_run(tables, "load --delta-from", {"uri": settings.uri, "database": settings.database,
                                                 "delta_from": delta_from}, [tables / "nodes", tables / "edges"], [])
        return
    driver, settings = _neo4j_driver(uri, user, password, database)
    with driver, _progress() as progress:
        tasks = {name: progress.add_task(name, total=count) for name, count in {**node_counts, **edge_counts}.items()}
        try:
            summary = load_graph(tables, driver, settings.database, batch_size,
                                 progress=lambda name, done, total: progress.update(tasks[name], completed=done),
                                 replace=replace)
        except LoadInterrupted as error:
            raise fail(str(error))
    console.print(f"loaded {sum(summary.nodes.values()):,} nodes and {sum(summary.relationships.values()):,} "
                  f"relationships into {settings.uri} in {summary.seconds:.1f}s "
                  f"({summary.per_second:,.0f} per second)"
                  + (f"; {summary.retries:,} batches retried after a transient error" if summary.retries else ""))
    record_run(tables, "load", {"uri": settings.uri, "database": settings.database, "replace": replace},
               [tables / "nodes", tables / "edges"], [])


@app.command()
def query(
    name: Annotated[str | None, typer.Argument(help="A cookbook query (cypher/*.cypher); leave out to list them.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="key=value, repeatable.")] = None,
    cypher: Annotated[str | None, typer.Option(help="Ad-hoc Cypher instead of a cookbook query (read-only).")] = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
) -> None:
    """Run a cookbook query or ad-hoc Cypher, read-only."""
    from identigraph.graph.cookbook import QueryError, cookbook, run_cookbook_query, run_read_query

    if output not in ("table", "csv", "json"):
        raise fail(f"--format {output!r}: use table, csv or json")
    if name is None and cypher is None:
        listing = Table(title="cookbook (cypher/)", title_justify="left")
        listing.add_column("query")
        listing.add_column("parameters")
        listing.add_column("answers")
        for query_name, item in cookbook().items():
            listing.add_row(query_name, ", ".join(f"{p.name}" + (f"={p.default}" if p.default else "")
                                                  for p in item.parameters), item.description)
        console.print(listing)
        return
    given = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise fail(f"--param {item!r}: write key=value")
        given[key.strip()] = value
    driver, settings = _neo4j_driver(uri, user, password, database)
    try:
        with driver:
            if cypher is not None:
                columns, rows = run_read_query(driver, cypher, given, settings.database)
            else:
                columns, rows = run_cookbook_query(driver, name, given, settings.database)
    except QueryError as error:
        raise fail(str(error))
    _print_rows(columns, rows, output)


@app.command()
def embed(
    tables: Annotated[Path | None, typer.Argument(help="The --out folder of `identigraph graph build`.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for embeddings.parquet, model.pt, metrics.json "
                                                  "(default: TABLES/embeddings).")] = None,
    dim: Annotated[int | None, typer.Option(help="Embedding size [default: 64; 256 with --target].", min=2)] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs [default: 100 full-batch, 10 mini-batch]; "
                                                    "with --target, LightGCN's optimiser steps [default: 300].",
                                               min=1)] = None,
    batching: Annotated[str, typer.Option(help="full: the whole graph every step; neighbour: LinkNeighborLoader "
                                               "mini-batches (needs pyg-lib or torch-sparse); auto: neighbour "
                                               "when installed.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (split, initialisation, negatives).")] = 7,
    apply_checkpoint: Annotated[Path | None, typer.Option("--apply", help="model.pt of an earlier run: embed "
                                                          "the (grown) graph with it, no training.")] = None,
    from_neo4j: Annotated[bool, typer.Option(help="Read the graph from Neo4j instead of the tables.")] = False,
    to_neo4j: Annotated[bool, typer.Option(help="Write Customer.embedding to Neo4j and create its vector index.")] = False,
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
    target: Annotated[str | None, typer.Option(help="Temporal link prediction on this relationship type of any "
                                                    "tables (with --split-time).")] = None,
    split_time: Annotated[str | None, typer.Option(help="Train on relationships that began before this time, "
                                                        "rank the new pairs after it.")] = None,
) -> None:
    """Learn GNN embeddings of customers, products and devices (heterogeneous GraphSAGE, link prediction);
    with --target and --split-time, temporal link prediction on any relationship beside baselines."""
    from identigraph.embeddings.data import EmbeddingInputError
    from identigraph.embeddings.pipeline import apply, embed as train_embeddings
    from identigraph.embeddings.train import TrainingConfig

    if tables is None and not from_neo4j:
        raise fail("give the graph tables folder, or --from-neo4j")
    out = out or (tables / "embeddings" if tables is not None else Path("embeddings"))
    if target or split_time:
        _embed_temporal(tables, target, split_time, out, epochs, dim, seed)
        return
    dim = dim or 64
    driver = settings = None
    if from_neo4j or to_neo4j:
        driver, settings = _neo4j_driver(uri, user, password, database)
    try:
        frames = None
        if from_neo4j:
            from identigraph.embeddings.neo4j_io import read_graph_frames_from_neo4j

            with console.status(f"reading the graph from {settings.uri}"):
                frames = read_graph_frames_from_neo4j(driver, settings.database)
        if apply_checkpoint is not None:
            with console.status("embedding with the saved model"):
                result = apply(tables, apply_checkpoint, out, frames=frames)
        else:
            try:
                config = TrainingConfig(dim=dim, seed=seed, batching=batching)
            except ValueError as error:
                raise fail(f"--batching: {error}") from None
            if epochs:
                config = replace(config, **{"mini_batch_epochs" if config.mini_batches else "epochs": epochs})
            with _progress() as progress:
                task = progress.add_task("training (link prediction)", total=config.epoch_count)
                result = train_embeddings(tables, out, config, frames=frames,
                                          progress=lambda epoch, loss: progress.update(
                                              task, completed=epoch, description=f"training, loss {loss:.3f}"))
            _print_link_report(result.report)
        console.print(f"embedded {', '.join(f'{n:,} {t}s' for t, n in result.nodes.items())} in {result.seconds:.1f}s; "
                      f"wrote {out}/embeddings.parquet" + ("" if apply_checkpoint else ", model.pt, metrics.json"))
        record_run(out, "embed", {"dim": dim, "epochs": epochs, "batching": batching, "seed": seed,
                                  "apply": apply_checkpoint,
                                  "from_neo4j": from_neo4j}, [tables] if tables else [], [out])
        if to_neo4j:
            from identigraph.embeddings.neo4j_io import write_customer_embeddings

            with console.status("writing Customer.embedding"):
                written = write_customer_embeddings(driver, out / "embeddings.parquet", settings.database)
            console.print(f"wrote {written:,} customer embeddings to {settings.uri}; vector index customer_embedding "
                          "(cosine); try `identigraph query similar_customers --param customer_id=…`")
    except (EmbeddingInputError, ValueError, FileNotFoundError) as error:
        raise fail(str(error))
    finally:
        if driver is not None:
            driver.close()


def _embed_temporal(tables: Path | None, target: str | None, split_time: str | None, out: Path, steps: int | None,
                    dim: int | None, seed: int) -> None:
    from identigraph.embeddings.temporal import LIGHTGCN_DIM, LIGHTGCN_STEPS, TemporalSplitError, embed_temporal

    if not (target and split_time and tables is not None):
        raise fail("temporal link prediction needs the tables folder, --target REL and --split-time T")
    try:
        with console.status("temporal link prediction") as status:
            report = embed_temporal(tables, target, split_time, out, steps=steps or LIGHTGCN_STEPS,
                                    dim=dim or LIGHTGCN_DIM, seed=seed,
                                    progress=lambda message: status.update(message))
    except TemporalSplitError as error:
        raise fail(str(error))
    table = Table(title=f"{target}: {report.train_pairs:,} pairs before {report.split_time}, "
                        f"{report.test_pairs:,} new after it ({report.starts_evaluated:,} starts)",
                  title_justify="left")
    for column in ("model", f"Recall@{report.k}", f"NDCG@{report.k}", "s"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model in report.models:
        table.add_row(model.name, f"{model.recall:.4f}", f"{model.ndcg:.4f}", f"{model.seconds:.1f}")
    console.print(table)
    console.print(f"wrote {out}/metrics.json and {out}/embeddings.parquet (LightGCN on every pair)")
    record_run(out, "embed --target", {"target": target, "split_time": split_time, "steps": steps, "dim": dim,
                                       "seed": seed}, [tables], [out])


def _embeddings_path(tables: Path, embeddings: Path | None, no_embeddings: bool) -> Path | None:
    if no_embeddings:
        return None
    path = embeddings or tables / "embeddings" / "embeddings.parquet"
    if not path.exists():
        raise fail(f"{path} is missing: train embeddings first (`identigraph embed {tables}`), pass --embeddings, "
                   "or run without them (--no-embeddings)")
    return path


EmbeddingsOption = Annotated[Path | None, typer.Option(help="embeddings.parquet (default: TABLES/embeddings/).")]
NoEmbeddings = Annotated[bool, typer.Option("--no-embeddings", help="Leave the GNN embeddings out.")]


@app.command()
def segment(
    tables: Annotated[Path, typer.Argument(help="The --out folder of `identigraph graph build`.")],
    k: Annotated[str, typer.Option(help="Number of segments, or auto (silhouette over --k-min..--k-max).")] = "auto",
    k_min: Annotated[int, typer.Option(min=2)] = 3,
    k_max: Annotated[int, typer.Option(min=2)] = 8,
    seed: Annotated[int, typer.Option(help="Random seed (k-means, PCA, silhouette sample).")] = 7,
    embeddings: EmbeddingsOption = None, no_embeddings: NoEmbeddings = False,
    to_neo4j: Annotated[bool, typer.Option(help="Write (:Segment) nodes and IN_SEGMENT edges to Neo4j.")] = False,
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
    node_label: Annotated[str | None, typer.Option(help="Segment every node of this label of any tables (built "
                                                        "or imported).")] = None,
) -> None:
    """Cluster customers into labelled segments on embeddings + RFM features; with --node-label,
    the nodes of any label on their features, relationships and embeddings."""
    from identigraph.scoring.segments import SegmentConfig, segment_customers

    if k != "auto" and not k.isdigit():
        raise fail(f"--k {k!r}: give a number of segments or auto")
    try:
        config = SegmentConfig(k=None if k == "auto" else int(k), k_range=(k_min, k_max), seed=seed)
    except ValueError as error:
        raise fail(str(error))
    from identigraph.graph.model import BUILT_MODEL, model_of

    if node_label is None and model_of(tables) is not BUILT_MODEL:
        raise fail(f"{tables} was not built by `identigraph graph build`: name the label to segment with "
                   f"--node-label (it has {', '.join(sorted(model_of(tables).nodes))})")
    if node_label is not None:
        _segment_node_label(tables, node_label, config, embeddings, no_embeddings)
        return
    try:
        with console.status("segmenting customers (k-means, silhouette, stability over seeds)"):
            result = segment_customers(tables, tables, _embeddings_path(tables, embeddings, no_embeddings), config,
                                       risk_path=tables / "risk.parquet")
    except (ValueError, FileNotFoundError) as error:
        raise fail(str(error))
    _print_segments(result)
    record_run(tables, "segment", {"k": k, "k_min": k_min, "k_max": k_max, "seed": seed,
                                   "embeddings": not no_embeddings}, [tables / "nodes", tables / "edges"],
               [result.path])
    if to_neo4j:
        from identigraph.scoring.neo4j_io import write_segments

        written, where = _write_to_neo4j(write_segments, tables, "writing segments", uri, user, password, database)
        console.print(f"wrote {result.k} (:Segment) nodes and {written:,} IN_SEGMENT edges to {where}; "
                      "try `identigraph query segment_summary`")


def _segment_node_label(tables: Path, label: str, config, embeddings: Path | None, no_embeddings: bool) -> None:
    from identigraph.scoring.node_risk import NodeScoringError
    from identigraph.scoring.node_segments import segment_nodes

    path = _label_embeddings(tables, embeddings, no_embeddings)
    try:
        with console.status(f"segmenting {label} nodes (k-means, silhouette, stability over seeds)"):
            result = segment_nodes(tables, label, tables, path, config)
    except (NodeScoringError, ValueError, FileNotFoundError) as error:
        raise fail(str(error))
    tried = ", ".join(f"k={k}: {s:.3f}" for k, s in result.silhouette.items())
    table = Table(title=f"{result.k} segments of {label}" + (f" (silhouette {tried})" if tried else "") +
                  f"; stability ARI across seeds {result.stability_ari:.3f}", title_justify="left")
    for name in ("id", "segment", "nodes", "share", "what sets it apart"):
        table.add_column(name, justify="right" if name in ("nodes", "share") else "left")
    for p in result.profiles.itertuples():
        table.add_row(p.segment_id, p.segment, f"{p.nodes:,}", f"{p.share:.1%}", p.distinctive)
    console.print(table)
    console.print(f"wrote {result.path}, segment_profiles.parquet (with each segment's most over-represented "
                  f"neighbours), segments.json in {result.seconds:.1f}s")
    record_run(tables, "segment --node-label", {"node_label": label, "k": config.k, "seed": config.seed,
                                                "embeddings": str(path) if path else None},
               [tables / "nodes", tables / "edges"], [result.path])


def _write_to_neo4j(write, tables: Path, doing: str, uri, user, password, database) -> tuple[int, str]:
    """Run a write-back function (driver, tables, database) -> count; returns it and the URI."""
    driver, settings = _neo4j_driver(uri, user, password, database)
    with driver, console.status(doing):
        return write(driver, tables, settings.database), settings.uri


def _print_segments(result) -> None:
    tried = ", ".join(f"k={k}: {s:.3f}" for k, s in result.silhouette.items())
    table = Table(title=f"{result.k} segments" + (f" (silhouette {tried})" if tried else "") +
                  f"; stability ARI across seeds {result.stability_ari:.3f}", title_justify="left")
    for name in ("id", "segment", "customers", "spend", "orders", "recency", "tenure", "risky"):
        table.add_column(name, justify="left" if name in ("id", "segment") else "right")
    for p in result.profiles.itertuples():
        table.add_row(p.segment_id, p.segment, f"{p.customers:,}", f"{p.avg_spend:,.0f}", f"{p.median_orders:g}",
                      f"{p.median_recency_days:,.0f}d", f"{p.median_tenure_days:,.0f}d", f"{p.risky_share:.1%}")
    console.print(table)
    console.print("spend: average per customer; orders, recency, tenure: medians; risky: share in the high and "
                  "critical risk bands; categories, channel and device mix in segment_profiles.parquet")
    console.print(f"wrote {result.path}, segment_profiles.parquet, segments.json in {result.seconds:.1f}s")


@app.command()
def score(
    tables: Annotated[Path, typer.Argument(help="The --out folder of `identigraph graph build`.")],
    customer: Annotated[str | None, typer.Option(help="Print this customer's score and reasons from risk.parquet.")] = None,
    labels: Annotated[Path | None, typer.Option(help="Fraud labels (source,record_id,label or customer_id,label); "
                                                     "default: the fraud_label of the source records.")] = None,
    truth: Annotated[Path | None, typer.Option(help="The generator's truth/ folder: evaluate against it.")] = None,
    unsupervised: Annotated[bool, typer.Option(help="Ignore labels: anomaly score (a rank, not a probability).")] = False,
    seed: Annotated[int, typer.Option(help="Random seed (folds, trees).")] = 7,
    folds: Annotated[int, typer.Option(help="Cross-validation folds.", min=2)] = 5,
    compare_gnn: Annotated[bool, typer.Option(help="Also train a GNN node classifier on the same folds and "
                                                   "report it beside the trees (five more trainings).")] = False,
    embeddings: EmbeddingsOption = None, no_embeddings: NoEmbeddings = False,
    to_neo4j: Annotated[bool, typer.Option(help="Set Customer.risk_score, risk_band, risk_reasons in Neo4j.")] = False,
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
    node_label: Annotated[str | None, typer.Option(help="Score every node of this label of any tables (built or "
                                                        "imported) from --labels id,label.")] = None,
) -> None:
    """Fraud-risk score with reason codes for every customer (supervised with labels, else anomaly);
    with --node-label, for any label of any tables from a labels file."""
    import pandas as pd

    if node_label is not None:
        _score_node_label(tables, labels, node_label, folds, seed, embeddings, no_embeddings)
        return

    if customer is not None:
        path = tables / "risk.parquet"
        if not path.exists():
            raise fail(f"{path} is missing: run `identigraph score {tables}` first")
        risk = pd.read_parquet(path)
        row = risk[risk["customer_id"] == customer]
        if row.empty:
            raise fail(f"customer {customer!r} is not in {path}")
        row = row.iloc[0]
        console.print(f"{customer}: risk {row.risk_score:.4f} ({row.risk_band}, {row.score_kind})"
                      + (f", labelled {row.label}" if row.label else ""))
        for number, reason in enumerate(row.risk_reasons, 1):
            console.print(f"  {number}. {reason}", soft_wrap=True)  # one line each, for grep and logs
        return
    from identigraph.scoring.pipeline import score_customers
    from identigraph.scoring.risk import RiskConfig

    try:
        config = RiskConfig(seed=seed, folds=folds, compare_gnn=compare_gnn)
        with _progress() as progress:
            task = progress.add_task("cross-validated training", total=folds + 1)
            result = score_customers(tables, tables, _embeddings_path(tables, embeddings, no_embeddings), labels,
                                     truth, config, supervised=False if unsupervised else None,
                                     progress=lambda done, total: progress.update(task, completed=done, total=total))
    except (ValueError, FileNotFoundError) as error:
        raise fail(str(error))
    _print_risk(result)
    record_run(tables, "score", {"folds": folds, "seed": seed, "labels": labels, "unsupervised": unsupervised,
                                 "embeddings": not no_embeddings}, [tables / "nodes", tables / "edges"],
               [result.path, tables / "risk.json"])
    if to_neo4j:
        from identigraph.scoring.neo4j_io import write_risk

        written, where = _write_to_neo4j(write_risk, tables, "writing risk scores", uri, user, password, database)
        console.print(f"set risk_score, risk_rank, risk_band, risk_reasons on {written:,} customers in {where}; "
                      "try `identigraph query top_risk_customers`")


def _label_embeddings(tables: Path, embeddings: Path | None, no_embeddings: bool) -> Path | None:
    """For any label: --embeddings, else the default file where `identigraph embed` wrote one."""
    default = tables / "embeddings" / "embeddings.parquet"
    return None if no_embeddings else embeddings or (default if default.exists() else None)


def _score_node_label(tables: Path, labels: Path | None, label: str, folds: int, seed: int,
                      embeddings: Path | None, no_embeddings: bool) -> None:
    from identigraph.scoring.node_risk import NodeScoringError, score_nodes

    if labels is None:
        raise fail("--node-label needs --labels FILE with the columns id,label (1 = fraud or abuse, 0 = legitimate)")
    embeddings = _label_embeddings(tables, embeddings, no_embeddings)
    try:
        with console.status(f"scoring {label} nodes ({folds}-fold cross-validation)"):
            result = score_nodes(tables, labels, label, folds=folds, seed=seed, embeddings_path=embeddings)
    except (NodeScoringError, FileNotFoundError) as error:
        raise fail(str(error))
    console.print(f"{result.nodes:,} {label} nodes scored from {result.labelled:,} labels ({result.positives:,} "
                  f"positive; {result.unmatched_labels:,} label rows name no {label} node)")
    for name, figures in result.evaluation.items():
        console.print(f"  held out ({folds} folds), {name}: AUROC {figures['auroc']:.4f}, AUPRC {figures['auprc']:.4f}")
    if result.embedding_kept is not None:
        console.print(f"  the embeddings {'are' if result.embedding_kept else 'are not'} used: the held-out AUPRC is "
                      f"{'higher' if result.embedding_kept else 'not higher'} with them")
    console.print(f"wrote {result.path} and {result.path.parent / 'risk.json'} ({result.seconds:.1f}s)")
    record_run(tables, "score --node-label", {"node_label": label, "labels": labels, "folds": folds, "seed": seed},
               [tables / "nodes", tables / "edges", labels], [result.path])


def _print_risk(result) -> None:
    kind = "supervised (calibrated probability)" if result.supervised else "anomaly score (unsupervised rank)"
    console.print(f"{result.customers:,} customers scored, {kind}: " +
                  ", ".join(f"{band} {n:,}" for band, n in result.band_counts.items()))
    if result.comparison is not None:
        c = result.comparison
        table = Table(title=f"held-out folds (whole identity components) against the {c.against}; gradient-boosted "
                            f"trees on {' + '.join(result.feature_groups)} beside behaviour only", title_justify="left")
        for name in ("model", "ROC-AUC", "AP", "precision@1%", "ring recall@2%"):
            table.add_column(name, justify="left" if name == "model" else "right")
        rows = [("graph", c.model), ("no-graph baseline", c.baseline)] + ([("graph, GNN classifier", c.gnn)]
                                                                          if c.gnn else [])
        for name, m in rows:
            ring = "" if m.ring_recall_at_2pct is None else f"{m.ring_recall_at_2pct:.3f}"
            table.add_row(name, f"{m.roc_auc:.4f}", f"{m.average_precision:.4f}", f"{m.precision_at_1pct:.4f}", ring)
        console.print(table)
        if c.gnn:
            console.print(f"held-out AP against the labels: trees {c.label_ap['trees']:.4f}, GNN {c.label_ap['gnn']:.4f}; "
                          + ("the trees score" if c.kept == "trees" else
                             "the GNN did better, but scoring with it is not built: the trees score"))
        for group, choice in result.group_selection.items():
            console.print(f"{group} features {'kept' if choice['kept'] else 'left out'}: cross-validated AP against "
                          f"the labels {choice['label_ap_with']:.4f} with them, {choice['label_ap_without']:.4f} without")
        if c.baseline.average_precision > 0:
            console.print(f"average precision {c.model.average_precision / c.baseline.average_precision:.2f}x the "
                          "no-graph baseline's")
    console.print(f"wrote {result.path} and risk.json in {result.seconds:.1f}s; "
                  "one customer: identigraph score TABLES --customer ID")


@review_app.command("export")
def review_export(
    directory: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    out: Annotated[Path, typer.Option(help="CSV to write: one uncertain pair per row, a decision column to fill.")],
    limit: Annotated[int | None, typer.Option(help="At most this many pairs, the most uncertain.", min=1)] = None,
) -> None:
    """Pairs between the auto-reject and auto-accept thresholds, most uncertain first."""
    from identigraph.resolution.review import export_uncertain_pairs

    try:
        written = export_uncertain_pairs(directory, out, limit)
    except (FileNotFoundError, ValueError) as error:
        raise fail(str(error))
    console.print(f"wrote {written:,} pairs to {out}: fill the decision column with match or non-match, then "
                  f"`identigraph review import {directory} {out}`")
    record_run(directory, "review export", {"limit": limit}, [directory / "pairs.parquet"], [out])


@review_app.command("import")
def review_import(
    directory: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    decisions: Annotated[Path, typer.Argument(help="The exported CSV with its decision column filled in.")],
    retrain: Annotated[bool, typer.Option(help="Also re-estimate m from the pairs decided match and rescore.")] = False,
) -> None:
    """Apply review decisions as must-link / cannot-link constraints and re-cluster."""
    from identigraph.resolution.review import ReviewError, apply_review

    try:
        with console.status("re-clustering with the decisions"):
            result = apply_review(directory, decisions, retrain)
    except (ReviewError, FileNotFoundError) as error:
        raise fail(str(error))
    console.print(f"{result.decisions:,} decisions on file ({result.must_links:,} match, {result.cannot_links:,} "
                  f"non-match): {result.entities_before:,} -> {result.entities_after:,} customers, "
                  f"{result.merges:,} merges, {result.splits:,} splits (lineage.parquet)")
    if result.retrained:
        console.print("m re-estimated from the reviewed matches; largest change per comparison: "
                      + ", ".join(f"{k} {v:.3f}" for k, v in result.m_change.items())
                      + "; the model before is model.before-review.json")
    record_run(directory, "review import", {"retrain": retrain}, [decisions], [directory])


@app.command()
def forget(
    resolved: Annotated[Path, typer.Argument(help="The --out folder of `identigraph resolve`.")],
    customer: Annotated[str | None, typer.Option(help="Customer id: erase every record of this customer.")] = None,
    record: Annotated[str | None, typer.Option(help="SOURCE:RECORD_ID: erase this one record.")] = None,
    tables: Annotated[Path | None, typer.Option(help="Graph tables (`identigraph graph build --out`) to erase "
                                                     "from as well.")] = None,
    to_neo4j: Annotated[bool, typer.Option("--neo4j", help="Erase from the Neo4j graph as well.")] = False,
    uri: NeoUri = None, user: NeoUser = "neo4j", password: NeoPassword = None, database: NeoDatabase = "neo4j",
) -> None:
    """Erase a person's PII from the artifacts, the graph tables and Neo4j; later runs into the
    same folder (or with --forgotten) quarantine their records instead of linking them."""
    from identigraph.graph.erasure import erase_from_graph_tables, erase_from_neo4j
    from identigraph.resolution.erasure import ErasureError, erase_from_resolution

    try:
        erasure = erase_from_resolution(resolved, customer, record)
        written = list(erasure.artifacts)
        if tables is not None:
            written += erase_from_graph_tables(tables, resolved, erasure)
        deleted = None
        if to_neo4j:
            driver, settings = _neo4j_driver(uri, user, password, database)
            with driver:
                deleted = erase_from_neo4j(driver, resolved, erasure, settings.database)
    except (ErasureError, LookupError, FileNotFoundError) as error:
        raise fail(str(error))
    console.print(f"forget request {erasure.request_id}: customer {erasure.customer_id}, "
                  f"{len(erasure.record_keys)} record(s) erased from {len(written)} file(s)"
                  + ("" if deleted is None else f" and from Neo4j ({deleted} identifier node(s) deleted)")
                  + f"; later runs into {resolved} quarantine these records (forgotten.jsonl)")
    record_run(resolved, "forget", {"request_id": erasure.request_id, "customer_id": erasure.customer_id,
                                    "record_keys": erasure.record_keys, "scope": erasure.scope,
                                    "tables": tables, "neo4j": to_neo4j}, [], [Path(p) for p in written])


@app.command()
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
        raise fail(f"{tables} is not a folder; pass the --out folder of `identigraph graph build`")
    with console.status("drawing the report"):
        result = write_report(tables, out, resolution, truth)
    console.print(f"wrote {result.path} ({len(result.sections)} sections: {', '.join(result.sections)}; "
                  f"{result.figures} figures)")


def _print_link_report(report) -> None:
    table = Table(title=f"held-out edges ({report.edges:,} edges, {report.epochs} {'mini-batch' if report.mini_batches else 'full-batch'} epochs, {report.seconds:.1f}s training)",
                  title_justify="left")
    for name in ("model", "AUC purchased", "AUC used_device", f"Recall@{report.gnn.k} purchases"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for name, metrics in (("GraphSAGE (hetero)", report.gnn), ("FastRP baseline", report.baseline)):
        table.add_row(name, f"{metrics.auc['purchased']:.4f}", f"{metrics.auc['used_device']:.4f}",
                      f"{metrics.recall_at_k:.4f}")
    console.print(table)


def _print_rows(columns: list[str], rows: list[dict], output: str) -> None:
    import csv
    import json
    import sys

    def plain(value):
        return value.iso_format() if hasattr(value, "iso_format") else value

    if output == "json":
        sys.stdout.write(json.dumps([{c: plain(r[c]) for c in columns} for r in rows], default=str, indent=1) + "\n")
        return
    if output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([json.dumps(plain(row[c]), default=str) if isinstance(row[c], (list, dict))
                             else plain(row[c]) for c in columns])
        return
    def short(value) -> str:
        if value is None:
            return ""
        if isinstance(value, list) and len(value) > 3:  # a table cell, not an export
            return ", ".join(map(str, value[:3])) + f", … ({len(value)})"
        return str(plain(value))

    table = Table(title=f"{len(rows):,} rows", title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(short(row[c]) for c in columns))
    console.print(table)


def _print_graph_summary(summary) -> None:
    table = Table(title=f"graph tables in {summary.out_dir} ({summary.seconds:.1f}s)", title_justify="left")
    table.add_column("nodes / relationships")
    table.add_column("rows", justify="right")
    for name, count in {**summary.nodes, **summary.edges}.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    for name, account in summary.events.items():
        console.print(f"{name}: read {account.read:,} = used {account.used:,} + quarantined {account.quarantined:,}")


NeoStore = Annotated[Path | None, typer.Option(
    "--store", envvar="IDENTIGRAPH_NEO4J_DIR", show_default=False,
    help="The local server's folder (database, log, pid, password). Default: .neo4j of the checkout "
         "around the working directory, else ./.neo4j.")]


@neo4j_app.command("start")
def neo4j_start(store: NeoStore = None) -> None:
    """Start the local server unless it runs; wait until Bolt answers."""
    from identigraph.graph import local_neo4j

    try:
        with console.status("starting Neo4j (the first start downloads its jars from Maven Central)"):
            status = local_neo4j.start(store=store)
    except local_neo4j.LocalNeo4jError as error:
        raise fail(str(error))
    console.print(f"Neo4j {status.version} {status.edition} is running at {status.uri} "
                  f"(pid {status.pid}, store {status.state_dir}); user neo4j, password in "
                  f"{status.state_dir / 'password'} or $NEO4J_PASSWORD")


@neo4j_app.command("stop")
def neo4j_stop(store: NeoStore = None) -> None:
    """Shut the local server down cleanly (nothing to do when it does not run)."""
    from identigraph.graph import local_neo4j

    try:
        stopped = local_neo4j.stop(store=store)
    except local_neo4j.LocalNeo4jError as error:
        raise fail(str(error))
    console.print(f"Neo4j stopped (store {local_neo4j.state_dir(store)})." if stopped
                  else f"Neo4j was not running (store {local_neo4j.state_dir(store)}).")


@neo4j_app.command("status")
def neo4j_status(store: NeoStore = None) -> None:
    """Say whether the local server runs and answers; exit 1 when it does not."""
    from identigraph.graph import local_neo4j

    status = local_neo4j.status(store)
    if not status.running:
        console.print(f"Neo4j is not running (store {status.state_dir}).")
        raise typer.Exit(1)
    console.print(f"Neo4j {status.version} {status.edition} is running at {status.uri} "
                  f"(pid {status.pid}, store {status.state_dir}).")


@neo4j_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def neo4j_run(command: Annotated[list[str], typer.Argument(help="The command, after --.")],
              store: NeoStore = None) -> None:
    """Run a command (`identigraph neo4j run -- pytest`) with the local server up; stop the
    server afterwards only if this started it. Exits with the command's status."""
    from identigraph.graph import local_neo4j

    try:
        code = local_neo4j.run_with_server(command, store)
    except local_neo4j.LocalNeo4jError as error:
        raise fail(str(error))
    except FileNotFoundError as error:
        raise fail(f"cannot run {command[0]!r}: {error.strerror}")
    raise typer.Exit(code)


def _print_metrics(metrics) -> None:
    table = Table(title=f"{metrics.records:,} records: {metrics.predicted_clusters:,} predicted clusters, "
                        f"{metrics.true_clusters:,} true", title_justify="left")
    for name in ("", "precision", "recall", "F1"):
        table.add_column(name, justify="right" if name else "left")
    table.add_row("pairwise", f"{metrics.pairwise_precision:.5f}", f"{metrics.pairwise_recall:.5f}",
                  f"{metrics.pairwise_f1:.5f}")
    table.add_row("B-cubed", f"{metrics.bcubed_precision:.5f}", f"{metrics.bcubed_recall:.5f}", f"{metrics.bcubed_f1:.5f}")
    console.print(table)


def _print_resolution(result) -> None:
    sources = Table(title="records", title_justify="left")
    for name in ("source", "file", "read", "resolved", "quarantined"):
        sources.add_column(name, justify="left" if name in ("source", "file") else "right")
    for name, stat in result.stats.items():
        sources.add_row(name, stat.file, f"{stat.read:,}", f"{stat.resolved:,}", f"{stat.quarantined:,}")
    sources.add_row("all", "", f"{result.read:,}", f"{result.records:,}", f"{result.quarantined:,}")
    console.print(sources)
    blocking = Table(title=f"blocking: {result.candidate_pairs:,} candidate pairs, reduction ratio "
                           f"{result.reduction_ratio:.6f}", title_justify="left")
    for name in ("rule", "pairs", "blocks over the size cap"):
        blocking.add_column(name, justify="left" if name == "rule" else "right")
    for report in result.blocking:
        blocking.add_row(report["rule"], f"{report['pairs']:,}", f"{report['blocks_skipped']:,}")
    console.print(blocking)
    if result.blocking_recall:
        recall = result.blocking_recall
        console.print(f"blocking recall ceiling ~{recall['recall_ceiling']:.1%}: about "
                      f"{recall['likely_matches_missed']:,.0f} likely matches share a name's sound, a date or a "
                      f"place but no blocking rule (estimated from {recall['probe_pairs_scored']:,} such pairs)")
    timing = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in result.seconds.items())
    console.print(f"{result.records:,} records -> {result.entities:,} customers; "
                  f"clustering guard split {result.clustering['components_split']:,} components; "
                  f"EM {result.em['iterations']} iterations")
    console.print(f"time: {timing}")
    console.print(f"wrote {result.out_dir}: entities.parquet, pairs.parquet, golden.parquet, model.json, "
                  "profile.json, quarantine.parquet, records.parquet, run.json")
    if result.incremental:
        inc = result.incremental
        console.print(f"incremental against {inc['previous']}: {inc['new_records_joining_earlier_customers']:,} new "
                      f"records joined earlier customers, {inc['new_customers']:,} new customers, "
                      f"{inc['merges']:,} merges, {inc['splits']:,} splits ({inc['updated_records']:,} records "
                      f"updated); {inc['total_records']:,} records in all; lineage in lineage.parquet")
    if result.pseudonymized:
        console.print("PII pseudonymized: names, dates of birth, e-mails, phones, addresses and national ids are "
                      "keyed hashes in every artifact; quarantined rows keep file, line and reason, not their text")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _print_profile(profile) -> None:
    for filename, (rows, columns) in profile.channels.items():
        table = Table(title=f"{filename}: {rows:,} rows", title_justify="left")
        for name, justify in (("column", "left"), ("complete", "right"), ("unique", "right"),
                              ("consistent", "right"), ("distinct", "right"), ("most frequent", "left")):
            table.add_column(name, justify=justify)
        for column in columns:
            consistent = "" if column.consistency is None else f"{column.consistency:.1%}"
            table.add_row(column.column, f"{column.completeness:.1%}", f"{column.uniqueness:.1%}", consistent,
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
        from identigraph.resolution.privacy import mask

        return mask(value)
    return value


def main() -> None:
    app()


if __name__ == "__main__":
    main()
