"""``identigraph forget``: erase a person from the artifacts, the graph tables and Neo4j."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from identigraph.cli.audit import record_run
from identigraph.cli.neo4j_options import NeoDatabase, NeoPassword, NeoUri, NeoUser, open_driver
from identigraph.cli.output import console


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
    from identigraph.resolution.erasure import erase_from_resolution

    erasure = erase_from_resolution(resolved, customer, record)
    written = list(erasure.artifacts)
    if tables is not None:
        written += erase_from_graph_tables(tables, resolved, erasure)
    deleted = None
    if to_neo4j:
        driver, settings = open_driver(uri, user, password, database)
        with driver:
            deleted = erase_from_neo4j(driver, resolved, erasure, settings.database)
    console.print(f"forget request {erasure.request_id}: customer {erasure.customer_id}, "
                  f"{len(erasure.record_keys)} record(s) erased from {len(written)} file(s)"
                  + ("" if deleted is None else f" and from Neo4j ({deleted} identifier node(s) deleted)")
                  + f"; later runs into {resolved} quarantine these records (forgotten.jsonl)")
    record_run(resolved, "forget", {"request_id": erasure.request_id, "customer_id": erasure.customer_id,
                                    "record_keys": erasure.record_keys, "scope": erasure.scope,
                                    "tables": tables, "neo4j": to_neo4j}, [], [Path(p) for p in written])
