"""``identigraph resolve``: link records across channels into customers."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.audit import record_run
from identigraph.cli.output import console, print_resolution


def resolve(
    out: Annotated[str, typer.Option(help="Folder for entities, pairs, golden records, model, profile (with "
                                          "--engine spark, also a Hadoop URI: hdfs://, s3a://...).")],
    config: Annotated[Path | None, typer.Option(help="linkage.toml; inferred from the inputs when left out.")] = None,
    model: Annotated[Path | None, typer.Option(help="model.json of an earlier run: score with it, no training.")] = None,
    pseudonymize: Annotated[bool, typer.Option(
        "--pseudonymize", help="Write keyed hashes (HMAC, key from $IDENTIGRAPH_PSEUDONYM_KEY) instead of names, "
                               "e-mails, phones, dates of birth, addresses and national ids; linkage runs on the "
                               "clear values in memory.")] = False,
    previous: Annotated[Path | None, typer.Option(help="The --out folder of an earlier run: link INPUTS (a new "
                                                       "batch) and the records written to it through the API against "
                                                       "its customers with its model, keeping their ids (and the ids "
                                                       "the API gave); merges and splits go to lineage.parquet. The "
                                                       "customers are those a full rerun with that model gives.")] = None,
    fast: Annotated[bool, typer.Option("--fast", help="With --previous: keep the earlier pairs and customers as "
                                                      "they were and score only the new records' pairs (quicker; "
                                                      "earlier pairs keep the statistics of their run).")] = False,
    forgotten: Annotated[Path | None, typer.Option(help="forgotten.jsonl written by `identigraph forget`: those "
                                                        "records are quarantined, not linked (default: "
                                                        "OUT/forgotten.jsonl when there is one).")] = None,
    engine: Annotated[str, typer.Option(help="embedded (this process, the default) or spark (pyspark: "
                                             "pip install \"identigraph[spark]\"; docs/scaling.md).")] = "embedded",
    spark_master: Annotated[str | None, typer.Option(help="With --engine spark: the master URL (default local[*]; "
                                                          "spark://host:7077, yarn, k8s://...).")] = None,
    inputs: Annotated[list[str] | None, typer.Argument(
        help="CSV, JSONL or Parquet files, or folders of them (with --engine spark, also Hadoop URIs). With "
             "--previous, may be left out: the records written to the earlier run through the API "
             "(api_records.jsonl) are the batch.",
        show_default=False)] = None,
) -> None:
    """Link records across channels into customers (docs/cli.md)."""
    from identigraph.resolution.jobs import resolve_files
    from identigraph.resolution.privacy import pseudonym_key_from_env

    # Paths stay text until the engine is known: Path() would fold a URI's "//".
    inputs = inputs or []
    if not inputs and previous is None:
        raise typer.BadParameter("name the files to resolve (or, with --previous DIR, none: the records written "
                                 "to DIR through the API are the batch)", param_hint="INPUTS")
    key = pseudonym_key_from_env() if pseudonymize else None
    with console.status("resolving") as status:
        result = resolve_files(inputs, out, config, model, key, previous, fast, forgotten,  # type: ignore[arg-type]
                               progress=lambda step: status.update(step),
                               announce=lambda message: console.print(message, markup=False, highlight=False),
                               engine=engine, spark_master=spark_master)
    print_resolution(result)
    record_run(out, "resolve", {"config": config, "model": model, "pseudonymize": pseudonymize,
                                "forgotten": forgotten, "previous": previous, "fast": fast, "engine": engine},
               [*inputs, *([config] if config else []), *([previous / "model.json"] if previous else [])], [out])
