"""What the commands print: rich tables and progress bars on stdout, errors on stderr, and
the printers more than one command uses."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one line per error, for logs and grep


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def print_profile(profile) -> None:
    for filename, (rows, columns) in profile.channels.items():
        table = Table(title=f"{filename}: {rows:,} rows", title_justify="left")
        for name in ("column", "complete", "unique", "consistent", "distinct", "most frequent"):
            table.add_column(name, justify="left" if name in ("column", "most frequent") else "right")
        for column in columns:
            consistent = "" if column.consistency is None else f"{column.consistency:.1%}"
            table.add_row(column.column, f"{column.completeness:.1%}", f"{column.uniqueness:.1%}", consistent,
                          f"{column.distinct:,}", mask_if_personal(column.column, column.example))
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


def mask_if_personal(column: str, value: str | None) -> str:
    """Profiles are printed to logs: show the shape of personal values, not the values."""
    if value is None:
        return ""
    if any(hint in column.lower() for hint in PII_HINTS):
        from identigraph.resolution.privacy import mask

        return mask(value)
    return value


def print_metrics(metrics) -> None:
    table = Table(title=f"{metrics.records:,} records: {metrics.predicted_clusters:,} predicted clusters, "
                        f"{metrics.true_clusters:,} true", title_justify="left")
    for name in ("", "precision", "recall", "F1"):
        table.add_column(name, justify="right" if name else "left")
    table.add_row("pairwise", f"{metrics.pairwise_precision:.5f}", f"{metrics.pairwise_recall:.5f}",
                  f"{metrics.pairwise_f1:.5f}")
    table.add_row("B-cubed", f"{metrics.bcubed_precision:.5f}", f"{metrics.bcubed_recall:.5f}", f"{metrics.bcubed_f1:.5f}")
    console.print(table)


def print_resolution(result) -> None:
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


def print_rows(columns: list[str], rows: list[dict], output: str) -> None:
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


def print_graph_summary(summary) -> None:
    table = Table(title=f"graph tables in {summary.out_dir} ({summary.seconds:.1f}s)", title_justify="left")
    table.add_column("nodes / relationships")
    table.add_column("rows", justify="right")
    for name, count in {**summary.nodes, **summary.edges}.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    for name, account in summary.events.items():
        console.print(f"{name}: read {account.read:,} = used {account.used:,} + quarantined {account.quarantined:,}")


def print_link_report(report) -> None:
    table = Table(title=f"held-out edges ({report.edges:,} edges, {report.epochs} {'mini-batch' if report.mini_batches else 'full-batch'} epochs, {report.seconds:.1f}s training)",
                  title_justify="left")
    for name in ("model", "AUC purchased", "AUC used_device", f"Recall@{report.gnn.k} purchases"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for name, metrics in (("GraphSAGE (hetero)", report.gnn), ("FastRP baseline", report.baseline)):
        table.add_row(name, f"{metrics.auc['purchased']:.4f}", f"{metrics.auc['used_device']:.4f}",
                      f"{metrics.recall_at_k:.4f}")
    console.print(table)
