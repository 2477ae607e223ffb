"""Graph table build and Neo4j load throughput on the synthetic data.

    python benchmarks/bench_graph_load.py [--customers 100000]

Generates the channel data, resolves it, builds the node/edge tables, then loads them into
the *local launcher's* Neo4j (started if needed) twice: into an emptied database (a fresh
load) and again on top (an idempotent reload that changes nothing); then replaces that
database by a bulk import of the same tables (`identigraph load --bulk`) and checks the
counts again. It empties the local development database first and never touches a server
named by NEO4J_URI.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic_graph import synthetic_graph_tables  # noqa: E402

from identigraph.graph import local_neo4j  # noqa: E402
from identigraph.graph.bulk_import import bulk_import  # noqa: E402
from identigraph.graph.load import graph_counts, load_graph  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    local_neo4j.start()
    settings = local_neo4j.running_settings()
    driver = settings.driver()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        summary, build_s = synthetic_graph_tables(work, args.customers)
        with driver.session(database=settings.database) as session:
            session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
        fresh = load_graph(work / "tables", driver, settings.database, workers=args.workers)
        again = load_graph(work / "tables", driver, settings.database, workers=args.workers)
        nodes, relationships = graph_counts(driver, settings.database)
        driver.close()
        bulk = bulk_import(work / "tables", work / "import")
        settings = local_neo4j.running_settings()  # the server came back on another port
        with settings.driver() as driver:
            bulk_counts = graph_counts(driver, settings.database)
    result = {"customers": args.customers, "nodes": sum(summary.nodes.values()),
              "relationships": sum(summary.edges.values()), "build_s": round(build_s, 1),
              "fresh_load_s": fresh.seconds, "fresh_per_s": round(fresh.per_second),
              "reload_s": again.seconds, "reload_per_s": round(again.per_second),
              "counts_match_tables": nodes == {k: summary.nodes.get(k, 0) for k in nodes}
              and relationships == {k: summary.edges.get(k, 0) for k in relationships},
              "bulk_files_s": bulk.files_seconds, "bulk_import_s": bulk.import_seconds,
              "bulk_until_ready_s": bulk.seconds, "bulk_per_s": round(bulk.per_second),
              "bulk_counts_equal": bulk_counts == (nodes, relationships)}
    print(json.dumps(result))
    print(f"\n| customers | nodes | relationships | table build s | fresh load s | per s | reload s | per s |\n"
          f"|---:|---:|---:|---:|---:|---:|---:|---:|\n"
          f"| {args.customers:,} | {result['nodes']:,} | {result['relationships']:,} | {result['build_s']} | "
          f"{fresh.seconds:.1f} | {fresh.per_second:,.0f} | {again.seconds:.1f} | {again.per_second:,.0f} |")
    print(f"\nbulk import: CSV files {bulk.files_seconds:.1f} s, importer {bulk.import_seconds:.1f} s, until the "
          f"server answers with its schema {bulk.seconds:.1f} s: {bulk.per_second:,.0f} nodes+relationships per "
          f"second ({bulk.per_second / fresh.per_second:.1f}x the fresh MERGE load); "
          f"with the files: {bulk.total / (bulk.seconds + bulk.files_seconds):,.0f} per second")


if __name__ == "__main__":
    main()
