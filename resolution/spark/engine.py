"""``SparkLinker``: ``Linker.run`` on Spark DataFrames, step for step.

reading and standardising (per source, ``partitions.standardise_rows``) -> the records'
order, derived keys and the run's value counts -> blocking (joins per rule; oversized
blocks by sorted neighbourhood in windows, linear in the block) -> comparing
(``partitions.compare_pairs``) -> training on the driver from pattern counts
(``linker.train_on_patterns``) -> scoring (``partitions.score_compared``) -> blocking
recall and the prior -> one-to-one sources -> connected components (label propagation)
-> each component clustered (``partitions.cluster_component``) -> golden records ->
artifacts (``spark.artifacts``).

Record order is the embedded engine's (files in order, rows in file order), so random
pairs for u, probe samples and ties fall on the same records in both engines.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from identigraph.resolution import standardise as std
from identigraph.resolution.blocking import (
    MAX_PROBE_BLOCK,
    MIN_REFINING_VALUES,
    REFINING_COLUMNS,
    REFINING_WINDOW,
    RuleReport,
    comparison_columns,
    default_rules,
    key_sources,
    refiners_of_rule,
    refining_columns,
    rule_columns,
)
from identigraph.resolution.clustering import judge_sources_once
from identigraph.resolution.config import ROW_NUMBER, LinkageConfig
from identigraph.resolution.golden import golden_records
from identigraph.resolution.ingest import QUARANTINE_COLUMNS, SourceStats, input_files, phone_region
from identigraph.resolution.linker import (
    PROBE_PAIRS_PER_COLUMN,
    ResolutionResult,
    TimedSteps,
    is_a_link_between_sources,
    prior_counting_pairs_outside_candidates,
    session_rules,
    train_on_patterns,
)
from identigraph.resolution.model import (
    HOLDER_NAME_COLUMNS,
    SHARED_VALUE_COLUMNS,
    FellegiSunterModel,
    check_model_fits,
    estimate_u,
    pattern_index,
)
from identigraph.resolution.profiling import SHAPE_SAMPLE, present_values, profile_present
from identigraph.resolution.semantic_types import VALIDITY_COLUMNS, default_comparisons
from identigraph.resolution.spark import artifacts
from identigraph.resolution.spark.components import connected_components
from identigraph.resolution.spark.partitions import (
    CLUSTER_REPORT,
    COUNT_PREFIX,
    LEFT,
    RIGHT,
    SHARED_PREFIX,
    cluster_component,
    compare_pairs,
    derived_key_names,
    score_compared,
    standardise_rows,
    with_derived_keys,
)

# The most rows of a source read to judge its fields' shapes (the embedded engine judges
# each field on its first SHAPE_SAMPLE values; a field sparser than this allows is judged
# on fewer).
PROFILE_HEAD_ROWS = 500_000
KEY_SEPARATOR = "\x1f"
# Records clustered in one Python call at most (on average): components are grouped into
# buckets of about this size.
RECORDS_PER_CLUSTERING_CALL = 20_000


class ColumnProfile:
    """What the embedded engine asks of ``EncodedRecords`` to choose rules and comparisons
    (``has``, ``in``, the number of distinct values, the record columns), answered from
    counts over every record."""

    def __init__(self, record_columns: list[str], present: dict[str, int], distinct: dict[str, int], n: int):
        self.records = pd.DataFrame(columns=record_columns)
        self._present, self._distinct, self.n = present, distinct, n

    def has(self, column: str, min_share: float = 0.0) -> bool:
        return column in self._present and self.n > 0 and self._present[column] / self.n > min_share

    def __contains__(self, column: str) -> bool:
        return column in self._present

    def __getitem__(self, column: str):
        return SimpleNamespace(values=range(self._distinct.get(column, 0)))


@dataclass
class SparkIngest:
    """The sources read, checked and standardised."""
    records: Any  # a Spark DataFrame: source, record_id, the record columns, _file and _row (their order)
    quarantine: Any  # a Spark DataFrame of QUARANTINE_COLUMNS
    stats: dict[str, SourceStats]
    profile: dict
    region: str | None
    date_formats: dict[str, list[str]]


@dataclass
class SparkRecords:
    """The run's records on Spark and what the driver knows of them."""
    frame: Any  # a Spark DataFrame: _idx, source, record_id, record columns, derived keys, _count__*, _shared__*
    record_columns: list[str]  # source, record_id, standard and per-source columns, as records.parquet has them
    n: int
    sources: list[str]  # in order of first record, as pd.factorize numbers them
    records_per_source: dict[str, int]
    profile: ColumnProfile
    # The record columns comparing, completing clusters and the training rules' blocks read:
    # all that travels with a pair.
    compared_columns: list[str]


class SparkLinker(TimedSteps):
    def __init__(self, config: LinkageConfig, spark, progress: Callable[[str], None] | None = None):
        self.config = self.configured = config
        self.settings = config.model
        self.spark = spark
        self.progress = progress or (lambda message: None)
        self.seconds: dict[str, float] = {}

    def _starting(self, name: str) -> None:
        # Spark's jobs carry the step, so their shuffles are counted per step (``shuffle_by_step``).
        self.spark.sparkContext.setJobGroup(name, name)

    # The whole run -----------------------------------------------------------------
    def run(self, inputs: Sequence[str | Path], out_dir: str | Path, model: FellegiSunterModel | None = None,
            forgotten: dict[str, str] | None = None) -> ResolutionResult:
        self.config, self.settings = self.configured, self.configured.model
        self._step("reading and standardising")
        files = resolve_inputs(inputs, self.config)
        ingested = self.ingest(files, forgotten or {})
        self._step("indexing and counting")
        records = self.prepare(ingested.records)
        result = self._link(records, ingested, out_dir, model)
        summary = result.to_json()
        summary["spark"] = {"master": self.spark.sparkContext.master,
                            "default_parallelism": self.spark.sparkContext.defaultParallelism,
                            "shuffle_bytes_by_step": shuffle_by_step(self.spark)}
        artifacts.write_text(out_dir, "run.json", json.dumps(summary, indent=2, default=str))
        return result

    def _link(self, records: SparkRecords, ingested: SparkIngest, out_dir, model: FellegiSunterModel | None
              ) -> ResolutionResult:
        settings = self.settings
        model_given = model is not None
        comparisons = default_comparisons(records.profile)
        sessions = session_rules(records.profile)
        self._step("blocking")
        pairs, reports = self.block(records)
        pairs = pairs.localCheckpoint()
        candidate_pairs = pairs.count()
        self._step("comparing")
        compared = self.compare(records, pairs, comparisons, sessions).localCheckpoint()
        self._step("training (u by sampling, m by EM)")
        if model is None:
            model = self.train(records, compared, comparisons, sessions)
        else:
            check_model_fits(model, comparisons, "retrain without --model")
        self._step("scoring")
        scored = self.score(compared, model, comparisons).localCheckpoint()
        blocking_recall = self.blocking_recall(records, pairs, scored, model, comparisons)
        if not model_given:
            model = prior_counting_pairs_outside_candidates(model, blocking_recall)
            scored.unpersist()
            scored = self.score(compared, model, comparisons).localCheckpoint()
        self._step("clustering")
        once, one_to_one = self.one_to_one(records, scored)
        if is_a_link_between_sources(settings, one_to_one, model_given):
            # Every source holds each entity once: linked as link_only from blocking on, as
            # the embedded engine does.
            self.settings = replace(settings, link_type="link_only", one_to_one=True)
            self.config = replace(self.config, model=self.settings)
            self.progress("every source lists each entity once: linking the sources one-to-one")
            for frame in (pairs, compared, scored):
                frame.unpersist()
            self._step("")
            judging = sum(self.seconds.pop(step, 0.0) for step in list(self.seconds)
                          if step not in ("reading and standardising", "indexing and counting"))
            result = self._link(records, ingested, out_dir, None)
            result.clustering["one_to_one"]["judged_from"] = one_to_one
            result.seconds["judging the sources (linked and deduped first)"] = round(judging, 3)
            return result
        clusters, cluster_report = self.cluster(records, scored, model, comparisons, once)
        cluster_report["one_to_one"] = one_to_one
        self._step("golden records and artifacts")
        entities = self.entities(records, clusters).localCheckpoint()
        artifacts.write_parquet(records.frame.orderBy("_idx").select(*records.record_columns), out_dir,
                                "records.parquet")
        artifacts.write_parquet(entities.orderBy("_idx").drop("_idx"), out_dir, "entities.parquet")
        artifacts.write_parquet(self.pairs_out(records, scored, comparisons), out_dir, "pairs.parquet")
        artifacts.write_parquet(self.golden(records, entities), out_dir, "golden.parquet")
        artifacts.write_parquet(ingested.quarantine, out_dir, "quarantine.parquet")
        artifacts.write_text(out_dir, "model.json", json.dumps(model.to_json(), indent=2))
        artifacts.write_text(out_dir, "profile.json", json.dumps(ingested.profile, indent=2, ensure_ascii=False))
        self.write_config(out_dir)
        entity_count = entities.select("entity_id").distinct().count()
        self._step("")
        return ResolutionResult(
            out_dir=Path(str(out_dir)), records=records.n, entities=entity_count,
            quarantined=sum(s.quarantined for s in ingested.stats.values()),
            read=sum(s.read for s in ingested.stats.values()), candidate_pairs=candidate_pairs,
            reduction_ratio=1.0 - candidate_pairs / max(self.possible_pairs(records), 1),
            stats=ingested.stats, blocking=[asdict(r) for r in reports], clustering=cluster_report,
            em={"iterations": model.iterations, "converged": model.converged, "lambda": model.lambda_},
            seconds=dict(self.seconds), blocking_recall=blocking_recall,
            phone_region=ingested.region, date_formats=ingested.date_formats)

    def write_config(self, out_dir) -> None:
        from identigraph.resolution.config import config_to_toml

        artifacts.write_text(out_dir, "linkage.toml",
                             config_to_toml(self.config, header="The config this run used (identigraph resolve "
                                                                "--engine spark)."))

    # Reading and standardising -----------------------------------------------------
    def ingest(self, files: list[str], forgotten: dict[str, str]) -> SparkIngest:
        """Every source read, checked and standardised: the records (``_file``, ``_row``:
        their order), the quarantine with reasons, counts, profile and date orders."""
        from pyspark.sql import functions as F

        local = [Path(f) for f in files if "://" not in f]
        region = phone_region(local, self.config) if local and len(local) == len(files) else \
            self.config.model.default_phone_region
        parts, quarantined, stats, profiles, date_formats = [], [], {}, {}, {}
        for file_no, path in enumerate(files):
            source_name = artifacts.stem(path)
            source = self.config.for_source(source_name)
            raw = artifacts.read_strings(self.spark, path).persist()
            raw_columns = [c for c in raw.columns if c not in ("_corrupt", "_row")]
            missing = [c for c in [source.id_column, source.source_column, *source.fields]
                       if c and c != ROW_NUMBER and c not in raw_columns]
            if missing:
                from identigraph.resolution.config import ConfigError

                raise ConfigError(f"{path}: column(s) {missing} named in the config are not in the file; "
                                  f"its columns are {raw_columns}")
            if source.id_column == ROW_NUMBER:
                frame = artifacts.with_index(raw, ["_row"], "_n").withColumn(
                    "_record_id", (F.col("_n") + 1).cast("string")).drop("_n")
            else:
                frame = raw.withColumn("_record_id", F.trim(F.col(f"`{source.id_column}`")))
            if source.source_column:
                named = F.regexp_replace(F.trim(F.col(f"`{source.source_column}`")), ":", "-")
                frame = frame.withColumn("_source", F.when(named.isNull() | (named == ""), F.lit(source_name))
                                         .otherwise(named))
            else:
                frame = frame.withColumn("_source", F.lit(source_name))
            frame = frame.withColumn("_key", F.concat_ws(":", "_source", "_record_id"))
            from pyspark.sql.window import Window

            first = Window.partitionBy("_key").orderBy("_row")
            erased = list(forgotten)
            frame = frame.withColumn("_seen", F.row_number().over(first)).persist()
            if frame.filter(F.col("_seen") > 1).limit(1).count():
                # The row the reason points to: the first of the key among the parsed rows.
                parsed = artifacts.with_index(frame.filter(F.col("_corrupt").isNull()).select("_row"), ["_row"], "_pos")
                frame = (frame.join(parsed, "_row", "left")
                         .withColumn("_first_row", F.min("_pos").over(Window.partitionBy("_key")) + 1))
            else:
                frame = frame.withColumn("_first_row", F.lit(None).cast("long"))
            no_id = F.col("_record_id").isNull() | (F.col("_record_id") == "")
            is_erased = F.col("_key").isin(erased) if erased else F.lit(False)
            reason = (F.when(F.col("_corrupt").isNotNull(), F.lit("unparseable row: malformed line"))
                      .when(no_id, F.lit(f"missing id in column {source.id_column!r}"))
                      .when(is_erased, F.concat(F.lit("erased by forget request "),
                                                artifacts.map_column(forgotten, "_key"), F.lit(": not linked again")))
                      .when(F.col("_seen") > 1, F.concat(F.lit("duplicate id '"), F.col("_record_id"),
                                                         F.lit("' in "), F.col("_source"), F.lit(" (first at row "),
                                                         F.col("_first_row").cast("string"), F.lit(")"))))
            frame = frame.withColumn("_reason", reason).persist()
            bad = frame.filter(F.col("_reason").isNotNull())
            raw_json = F.when(is_erased, F.lit("(erased: see the forget request in the reason)")).otherwise(
                F.coalesce(F.col("_corrupt"), F.to_json(F.struct(*[F.col(f"`{c}`") for c in raw_columns]))))
            quarantined.append(bad.select(
                F.col("_source").alias("source"), F.lit(Path(str(path)).name).alias("file"),
                F.lit(None).cast("long").alias("line"),
                F.when(no_id | F.col("_corrupt").isNotNull(), F.lit(None)).otherwise(F.col("_record_id")).alias("record_id"),
                F.col("_reason").alias("reason"), raw_json.alias("raw")))
            good = frame.filter(F.col("_reason").isNull())
            fields = [c for c in source.fields if c in raw_columns]
            order, placeholders = self._date_rules(good, source)
            date_formats.update({name: order for name in
                                 [r[0] for r in good.select("_source").distinct().collect()]})
            typed = good.select(*[F.col(f"`{c}`") for c in fields], "_source", "_record_id",
                                F.lit(file_no).cast("long").alias("_file"), F.col("_row"))
            profiled = [c for c in fields if source.fields[c] != "ignore"]
            validity = [VALIDITY_COLUMNS.get(source.fields[c]) for c in profiled]
            empty = pd.DataFrame({c: pd.Series(dtype=object) for c in [*fields, "_source", "_record_id", "_idx"]})
            shape = standardise_rows(empty, source, region, order, placeholders)
            schema = artifacts.string_schema([c for c in shape.columns if c != "_idx"],
                                             longs=["_file", "_row", *(f"_valid{i}" for i in range(len(profiled)))])

            def standardised(batches, source=source, order=order, placeholders=placeholders,
                             profiled=profiled, validity=validity):
                for batch in batches:
                    rows = batch.drop(columns=["_file", "_row"]).assign(_idx=0)
                    out = standardise_rows(rows, source, region, order, placeholders).drop(columns=["_idx"])
                    out["_file"], out["_row"] = batch["_file"].to_numpy(), batch["_row"].to_numpy()
                    # Per profiled field: its raw value is present and the standardiser kept it
                    # (the profile's validity).
                    for i, (column, standard) in enumerate(zip(profiled, validity)):
                        raw_present = batch[column].astype(object).map(
                            lambda v: isinstance(v, str) and v.strip() != "").to_numpy(bool)
                        kept = out[standard].notna().to_numpy(bool) if standard in out else np.zeros(len(out), bool)
                        out[f"_valid{i}"] = (raw_present & kept).astype(np.int64)
                    yield out

            part = typed.mapInPandas(standardised, schema).persist()
            read = raw.count()
            counts = part.agg(F.count("*").alias("resolved"),
                              *[F.sum(f"_valid{i}").alias(f"v{i}") for i in range(len(profiled))]).collect()[0]
            resolved = int(counts["resolved"])
            parts.append(part.drop(*[f"_valid{i}" for i in range(len(profiled))]))
            stat = SourceStats(file=Path(str(path)).name, read=read, resolved=resolved, quarantined=read - resolved,
                               unmapped_columns=[c for c in raw_columns if c not in source.fields
                                                 and c not in (source.id_column, source.source_column)])
            stats[source_name] = stat
            valid = {column: (int(counts[f"v{i}"] or 0) if standard else None)
                     for i, (column, standard) in enumerate(zip(profiled, validity))}
            profiles[source_name] = self._profile(typed, source, stat, valid)
        records = artifacts.union_by_name(parts)
        quarantine = artifacts.union_by_name(quarantined).select(*QUARANTINE_COLUMNS)
        return SparkIngest(records, quarantine, stats, {"sources": profiles}, region, date_formats)

    def _date_rules(self, good, source) -> tuple[list[str], tuple[frozenset[str], ...]]:
        """The order a source's dates are read in (``standardise.date_format_order`` over all
        its date-of-birth columns) and each column's placeholder dates
        (``standardise.placeholder_dates``), from the counts of its distinct texts."""
        from pyspark.sql import functions as F

        columns = [c for c, kind in source.fields.items() if kind == "date_of_birth" and c in good.columns]
        per_column = []
        for column in columns:
            text = F.trim(F.col(f"`{column}`"))
            counted = (good.select(text.alias("t")).filter(F.col("t").isNotNull() & (F.col("t") != ""))
                       .groupBy("t").count().toPandas())
            per_column.append(pd.Series(counted["count"].to_numpy(np.int64), index=counted["t"].to_numpy(object)))
        if not per_column:
            return list(std.DATE_FORMATS), ()
        texts = pd.concat(per_column).groupby(level=0).sum()
        order = std.date_format_order_of_counts(texts)
        placeholders = []
        for counts in per_column:
            iso = pd.Series(std.parse_dates(counts.index.to_numpy(object), order=order, placeholders=False)
                            .to_pylist(), dtype=object)
            per_date = pd.Series(counts.to_numpy()).groupby(iso.to_numpy()).sum()
            placeholders.append(frozenset(std.placeholder_dates(per_date).tolist()))
        return order, tuple(placeholders)

    def _profile(self, typed, source, stat: SourceStats, valid: dict[str, int | None]) -> dict:
        """The source's profile, as ``ingest._profile_source`` measures it: per field, the
        completeness, validity and uniqueness of all its values (``valid``: per field, the
        values the standardiser kept), and the consistency of its first values' shapes."""
        from pyspark.sql import functions as F

        columns = [c for c in valid]
        present = {c: F.when(F.regexp_replace(F.col(f"`{c}`"), r"(?U)^\s+|\s+$", "") != "", F.col(f"`{c}`"))
                   for c in columns}
        totals = typed.agg(F.count("*").alias("rows"),
                           *[F.count(present[c]).alias(f"p{i}") for i, c in enumerate(columns)],
                           *[F.countDistinct(present[c]).alias(f"d{i}") for i, c in enumerate(columns)]).collect()[0]
        rows = int(totals["rows"])
        # Shapes are judged on each field's first SHAPE_SAMPLE values, in file order: rows
        # enough for the sparsest field's, within bounds.
        sparsest = min([int(totals[f"p{i}"]) / rows for i in range(len(columns)) if totals[f"p{i}"]] or [1.0])
        head = typed.orderBy("_row").limit(min(rows, int(np.ceil(SHAPE_SAMPLE / sparsest)), PROFILE_HEAD_ROWS))
        first_rows = head.select(*[F.col(f"`{c}`") for c in columns]).toPandas()
        fields = {}
        for i, column in enumerate(columns):
            present_count, distinct = int(totals[f"p{i}"]), int(totals[f"d{i}"])
            kept = valid[column]
            shapes = profile_present(column, present_values(first_rows[column]))
            fields[column] = {"type": source.fields[column],
                              "completeness": present_count / rows if rows else 0.0,
                              "validity": kept / present_count if kept is not None and present_count else None,
                              "uniqueness": distinct / present_count if present_count else 0.0,
                              "consistency": shapes.consistency}
        return {"file": stat.file, "read": stat.read, "resolved": stat.resolved, "quarantined": stat.quarantined,
                "unmapped_columns": stat.unmapped_columns, "fields": fields}

    def prepare(self, records) -> SparkRecords:
        """The records in the embedded engine's order (``_idx``), with the derived blocking
        keys and the run's statistics each comparison reads (value counts of term-frequency
        and identifier columns, phone and e-mail values many people share)."""
        from pyspark.sql import functions as F

        indexed = artifacts.with_index(records, ["_file", "_row"], "_idx").drop("_file", "_row")
        record_columns = [c for c in indexed.columns if c != "_idx"]
        schema = artifacts.string_schema([*record_columns, *derived_key_names()], longs=["_idx"])
        keyed = indexed.mapInPandas(lambda batches: (with_derived_keys(b) for b in batches), schema)
        keyed = keyed.persist()
        n = keyed.count()
        columns = [*record_columns[2:], *derived_key_names()]
        # Distinct values matter only to refining columns, and only whether there are
        # MIN_REFINING_VALUES: estimated in one pass, counted exactly where near the line.
        refining = [c for c in columns if c in REFINING_COLUMNS or c.startswith(("category__", "text__"))]
        counts = keyed.agg(*[F.count(F.col(f"`{c}`")).alias(f"p{i}") for i, c in enumerate(columns)],
                           *[F.approx_count_distinct(F.col(f"`{c}`"), 0.02).alias(f"d{i}")
                             for i, c in enumerate(refining)]).collect()[0]
        present = {c: int(counts[f"p{i}"]) for i, c in enumerate(columns)}
        distinct = {c: int(counts[f"d{i}"]) for i, c in enumerate(refining)}
        near = [c for c in refining if distinct[c] < 4 * MIN_REFINING_VALUES]
        if near:
            exact = keyed.agg(*[F.countDistinct(F.col(f"`{c}`")).alias(f"e{i}") for i, c in enumerate(near)]).collect()[0]
            distinct.update({c: int(exact[f"e{i}"]) for i, c in enumerate(near)})
        profile = ColumnProfile(record_columns, present, distinct, n)
        first_of_source = (keyed.groupBy("source").agg(F.min("_idx").alias("first"), F.count("*").alias("records"))
                           .orderBy("first").collect())
        comparisons = default_comparisons(profile)
        # Value counts the comparisons read: term frequencies, and identifiers held by many
        # records (placeholders, ``model.IDENTIFIER_RECORD_LIMIT``).
        counted = sorted({c.column for c in comparisons if c.tf or c.column == "identifier"})
        frame = keyed
        for column in counted:
            frame = frame.join(keyed.groupBy(column).agg(F.count("*").alias(COUNT_PREFIX + column))
                               .filter(F.col(column).isNotNull()), column, "left")
        holder = next((c for c in HOLDER_NAME_COLUMNS if profile.has(c, 0.0)), None)
        for column in SHARED_VALUE_COLUMNS:
            if column not in present:
                continue
            if holder is None:
                frame = frame.withColumn(SHARED_PREFIX + column, F.lit(False))
                continue
            holders = (keyed.filter(F.col(column).isNotNull() & F.col(holder).isNotNull())
                       .select(column, holder).distinct().groupBy(column).count()
                       .select(column, (F.col("count") > self.settings.shared_value_limit).alias(SHARED_PREFIX + column)))
            frame = frame.join(holders, column, "left")
        # Checkpoints cut each step's plan from the steps before: otherwise every later query
        # carries (and plans, and describes) the whole run's lineage.
        frame = frame.localCheckpoint()
        keyed.unpersist()
        return SparkRecords(frame, record_columns, n, [r["source"] for r in first_of_source],
                            {r["source"]: int(r["records"]) for r in first_of_source}, profile,
                            columns_compared(comparisons, [rule for rule, _ in session_rules(profile)], record_columns))

    def possible_pairs(self, records: SparkRecords) -> int:
        n = records.n
        within = sum(k * (k - 1) // 2 for k in records.records_per_source.values())
        total = n * (n - 1) // 2
        return {"link_and_dedupe": total, "link_only": total - within, "dedupe_only": within}[self.settings.link_type]

    # Blocking ---------------------------------------------------------------------------
    def _link_filter(self, left_source, right_source):
        from pyspark.sql import functions as F

        link_type = self.settings.link_type
        if link_type == "link_and_dedupe":
            return F.lit(True)
        return left_source != right_source if link_type == "link_only" else left_source == right_source

    def block(self, records: SparkRecords):
        """Candidate pairs (``l`` < ``r``, record order) of the default rules, and a report
        per rule, as ``blocking.block`` finds them. A rule's oversized blocks (a shared
        junk value, a very common name) are paired by sorted neighbourhood in a window:
        pairs linear in the block, so one huge block neither stalls a task on a quadratic
        join nor holds its pairs in memory."""
        from pyspark.sql import functions as F

        settings = self.settings
        rules = default_rules(records.profile)
        refiners = refining_columns(records.profile, rules)
        base = records.frame
        parts, reports = [], []  # type: ignore[var-annotated]
        for rule in rules:
            limit = min(settings.max_block_size, rule.max_block_size or settings.max_block_size)
            present = F.lit(True)
            for column in rule.columns:
                present = present & F.col(column).isNotNull()
            keyed = base.filter(present).select(
                "_idx", "source", *[c for c in refiners_of_rule(rule, refiners)],
                F.concat_ws(KEY_SEPARATOR, *[F.col(c) for c in rule.columns]).alias("_key"))
            # Block sizes by aggregation (combined map-side) and a join, which adaptive
            # execution splits where one key holds most rows; a window would not.
            sizes = keyed.groupBy("_key").agg(F.count("*").alias("_size"))
            sized = keyed.join(sizes, "_key")
            small = sized.filter((F.col("_size") >= 2) & (F.col("_size") <= limit)).select("_idx", "source", "_key")
            a, b = small.alias("a"), small.alias("b")
            within = (a.join(b, F.col("a._key") == F.col("b._key"))
                      .filter((F.col("a._idx") < F.col("b._idx"))
                              & self._link_filter(F.col("a.source"), F.col("b.source")))
                      .select(F.col("a._idx").alias("l"), F.col("b._idx").alias("r"), F.lit(len(reports)).alias("_rule")))
            parts.append(within)
            skipped = sizes.filter(F.col("_size") > limit).agg(F.count("*").alias("blocks"),
                                                               F.sum("_size").alias("records")).collect()[0]
            reports.append(RuleReport(rule.name, 0, int(skipped["blocks"] or 0), int(skipped["records"] or 0)))
            if not skipped["blocks"]:
                continue
            oversized = sized.filter(F.col("_size") > limit).persist()
            for column in refiners_of_rule(rule, refiners):
                parts.append(self._sorted_neighbours(oversized, column).withColumn("_rule", F.lit(len(reports))))
                reports.append(RuleReport(f"{rule.name}, oversized blocks sorted by {column}", 0, 0, 0))
        tagged = artifacts.union_by_name(parts)
        from pyspark import StorageLevel

        tagged = tagged.persist(StorageLevel.MEMORY_AND_DISK)
        for row in tagged.groupBy("_rule").count().collect():
            reports[int(row["_rule"])].pairs = int(row["count"])
        pairs = tagged.select("l", "r").distinct()
        return pairs, reports

    def _sorted_neighbours(self, oversized, column: str):
        """``blocking.sorted_neighbour_pairs`` over the records of oversized blocks: each
        paired with the next ``REFINING_WINDOW`` of its block when the block is sorted by
        ``column`` (missing last, ties by record order). The sort is one global sort over
        every oversized block, range-partitioned, and a record meets its neighbours by an
        equi-join on rank: a block of millions is spread over every task like any other
        rows, and no task holds more than its share."""
        from pyspark.sql import functions as F

        ranked = artifacts.with_index(oversized.select("_idx", "source", "_key", column),
                                      [F.col("_key"), F.col(column).asc_nulls_last(), F.col("_idx")], "_rank")
        ahead = ranked.select(F.col("_rank").alias("_at"), F.col("_key").alias("_key_n"),
                              F.col("_idx").alias("_idx_n"), F.col("source").alias("_source_n"))
        behind = ranked.select("_idx", "source", "_key",
                               F.explode(F.array(*[F.col("_rank") + k for k in range(1, REFINING_WINDOW + 1)]))
                               .alias("_at"))
        return (behind.join(ahead, "_at")
                .filter((F.col("_key") == F.col("_key_n")) & self._link_filter(F.col("source"), F.col("_source_n")))
                .select(F.least("_idx", "_idx_n").alias("l"), F.greatest("_idx", "_idx_n").alias("r")))

    # Comparing, training, scoring ---------------------------------------------------------
    def _with_records(self, pairs, records: SparkRecords):
        """Pairs (``l``, ``r``) with both records' columns (``l__*``, ``r__*``) and statistics."""
        from pyspark.sql import functions as F

        keep = ["_idx", *records.compared_columns,
                *[c for c in records.frame.columns if c.startswith((COUNT_PREFIX, SHARED_PREFIX))]]
        left = records.frame.select(*[F.col(f"`{c}`").alias(LEFT + c) for c in keep])
        right = records.frame.select(*[F.col(f"`{c}`").alias(RIGHT + c) for c in keep])
        return (pairs.join(left, F.col("l") == F.col(LEFT + "_idx")).join(right, F.col("r") == F.col(RIGHT + "_idx"))
                .drop("l", "r")), keep

    def compare(self, records: SparkRecords, pairs, comparisons, sessions):
        from pyspark.sql.types import BooleanType, ByteType, DoubleType, LongType, StructField, StructType

        tf = [c.name for c in comparisons if c.tf]
        joined, keep = self._with_records(pairs, records)
        fields = [StructField("l", LongType()), StructField("r", LongType())]
        for j, comparison in enumerate(comparisons):
            fields.append(StructField(f"g{j}", ByteType()))
            if comparison.name in tf:
                fields.append(StructField(f"f{j}", DoubleType()))
        fields += [StructField(f"s{k}", BooleanType()) for k in range(len(sessions))]
        limit, n = self.settings.shared_value_limit, records.n
        rules = [rule for rule, _ in sessions]

        def compared(batches):
            for batch in batches:
                yield compare_pairs(batch, keep, comparisons, tf, rules, limit, n)

        return joined.mapInPandas(compared, StructType(fields))

    def random_pairs(self, records: SparkRecords):
        """``blocking.random_pairs``: the same uniform draws over the record order, the first
        ``u_sample_pairs`` that respect the link type."""
        from pyspark.sql import functions as F

        settings = self.settings
        count, n = settings.u_sample_pairs, records.n
        rng = np.random.default_rng(settings.seed)
        if n < 2:
            return self.spark.createDataFrame(pd.DataFrame({"l": pd.Series(dtype=np.int64),
                                                            "r": pd.Series(dtype=np.int64)}))
        left = rng.integers(0, n, size=int(count * 1.3) + 10)
        right = rng.integers(0, n, size=len(left))
        keep = left != right
        draws = pd.DataFrame({"l": np.minimum(left[keep], right[keep]), "r": np.maximum(left[keep], right[keep])})
        draws["_seq"] = np.arange(len(draws))
        sources = records.frame.select("_idx", "source")
        drawn = (self.spark.createDataFrame(draws)
                 .join(sources.select(F.col("_idx").alias("l"), F.col("source").alias("_sl")), "l")
                 .join(sources.select(F.col("_idx").alias("r"), F.col("source").alias("_sr")), "r")
                 .filter(self._link_filter(F.col("_sl"), F.col("_sr"))))
        # The first ``count`` draws that respect the link type: a cut-off in draw order.
        kept = np.sort(drawn.select("_seq").toPandas()["_seq"].to_numpy(np.int64))
        if len(kept) <= count:
            return drawn.select("l", "r")
        return drawn.filter(F.col("_seq") <= int(kept[count - 1])).select("l", "r")

    def train(self, records: SparkRecords, compared, comparisons, sessions) -> FellegiSunterModel:
        from pyspark.sql import functions as F

        level_columns = [f"g{j}" for j in range(len(comparisons))]
        random_compared = self.compare(records, self.random_pairs(records), comparisons, [])
        gamma_random = random_compared.select(*level_columns).toPandas().to_numpy(np.int8).reshape(-1, len(comparisons))
        u_random = estimate_u(gamma_random, [len(c.levels) for c in comparisons])
        session_columns = [f"s{k}" for k in range(len(sessions))]
        counted = compared.groupBy(*level_columns, *session_columns).agg(F.count("*").alias("_pairs")).toPandas()
        gamma = counted[level_columns].to_numpy(np.int8).reshape(-1, len(comparisons))
        all_patterns, inverse = pattern_index(gamma)
        pairs = counted["_pairs"].to_numpy(np.int64)
        totals = np.bincount(inverse, weights=pairs, minlength=len(all_patterns)).astype(np.int64)
        rule_column = {id(rule): f"s{k}" for k, (rule, _) in enumerate(sessions)}

        def session_counts(rule) -> np.ndarray:
            found = counted[rule_column[id(rule)]].to_numpy(bool)
            return np.bincount(inverse[found], weights=pairs[found], minlength=len(all_patterns)).astype(np.int64)

        return train_on_patterns(self.settings, comparisons, u_random, all_patterns, totals, sessions,
                                 session_counts, self.possible_pairs(records))

    def score(self, compared, model: FellegiSunterModel, comparisons):
        from pyspark.sql.types import ByteType, DoubleType, FloatType, LongType, StructField, StructType

        fields = [StructField("l", LongType()), StructField("r", LongType()),
                  *[StructField(f"g{j}", ByteType()) for j in range(len(comparisons))],
                  StructField("match_weight", FloatType()), StructField("match_probability", DoubleType()),
                  *[StructField(f"w{j}", FloatType()) for j in range(len(comparisons))]]
        return compared.mapInPandas(lambda batches: (score_compared(b, model, comparisons) for b in batches),
                                    StructType(fields))

    def blocking_recall(self, records: SparkRecords, pairs, scored, model, comparisons) -> dict:
        """``Linker.blocking_recall``: pairs that share a refining column's value but no
        rule, sampled as ``blocking.probe_pairs`` samples them (the same draws over the
        record order), scored, each likely match counted 1 / its chance of being sampled."""
        from pyspark.sql import functions as F

        settings = self.settings
        threshold = settings.match_threshold
        found = scored.filter(F.col("match_probability") >= threshold).count()
        n = records.n
        rng = np.random.default_rng(settings.seed)
        frame = records.frame
        sampled, usable_of = [], {}
        for column in refining_columns(records.profile):
            sizes = frame.filter(F.col(column).isNotNull()).groupBy(column).count()
            total = sizes.filter(F.col("count") <= MAX_PROBE_BLOCK).agg(
                F.sum(F.col("count") * (F.col("count") - 1) / 2).alias("t")).collect()[0]["t"] or 0
            if int(total) == 0:
                continue
            q = min(1.0, float(np.sqrt(PROBE_PAIRS_PER_COLUMN / int(total))))
            drawn = np.flatnonzero(rng.random(n) < q)
            kept = (self.spark.createDataFrame(pd.DataFrame({"_idx": drawn.astype(np.int64)}))
                    .join(frame.select("_idx", "source", column).filter(F.col(column).isNotNull()), "_idx")
                    .join(sizes.filter(F.col("count") <= MAX_PROBE_BLOCK).select(column), column))
            a, b = kept.alias("a"), kept.alias("b")
            sampled.append(a.join(b, F.col(f"a.{column}") == F.col(f"b.{column}"))
                           .filter((F.col("a._idx") < F.col("b._idx"))
                                   & self._link_filter(F.col("a.source"), F.col("b.source")))
                           .select(F.col("a._idx").alias("l"), F.col("b._idx").alias("r")))
            usable_of[column] = (q * q, sizes)
        if not sampled:
            return {"likely_matches_in_candidates": found, "likely_matches_missed": 0.0,
                    "recall_ceiling": 1.0, "probe_pairs_scored": 0}
        probe = artifacts.union_by_name(sampled).distinct().join(pairs, ["l", "r"], "left_anti")
        # Each pair's chance of being sampled: 1 - prod(1 - q_c^2) over the columns it shares.
        values = frame.select("_idx", *usable_of)
        missed_by_all = F.lit(1.0)
        with_values = (probe.join(values.select([F.col(c).alias("l_" + c) for c in values.columns]),
                                  F.col("l") == F.col("l__idx"))
                       .join(values.select([F.col(c).alias("r_" + c) for c in values.columns]),
                             F.col("r") == F.col("r__idx")))
        for column, (rate, sizes) in usable_of.items():
            usable = sizes.filter(F.col("count") <= MAX_PROBE_BLOCK).select(
                F.col(column).alias("u_" + column), F.lit(True).alias("ok_" + column))
            with_values = with_values.join(usable, F.col("l_" + column) == F.col("u_" + column), "left")
            shares = (F.col("l_" + column) == F.col("r_" + column)) & F.col("ok_" + column).isNotNull()
            missed_by_all = missed_by_all * F.when(shares, F.lit(1.0 - rate)).otherwise(F.lit(1.0))
        probe = with_values.select("l", "r", (1.0 - missed_by_all).alias("inclusion")).localCheckpoint()
        probe_scored = self.score(self.compare(records, probe.select("l", "r"), comparisons, []), model, comparisons)
        likely = (probe_scored.filter(F.col("match_probability") >= threshold).join(probe, ["l", "r"])
                  .agg(F.sum(1.0 / F.col("inclusion")).alias("missed"), F.count("*").alias("k")).collect()[0])
        probed = probe.count()
        missed = float(likely["missed"] or 0.0)
        return {"likely_matches_in_candidates": found, "likely_matches_missed": round(missed, 1),
                "recall_ceiling": round(found / (found + missed), 4) if found + missed else 1.0,
                "probe_pairs_scored": int(probed)}

    # Clustering ---------------------------------------------------------------------------
    def one_to_one(self, records: SparkRecords, scored) -> tuple[list[str], dict]:
        """The sources linked one-to-one (``clustering.one_to_one_sources``), judged on the
        pairs at or above the match threshold."""
        settings = self.settings
        names = records.sources
        k = len(names)
        if settings.one_to_one == "auto":
            once, report = self._sources_holding_entities_once(records, scored)
            report = {"one_to_one": "auto", **report}
        else:
            once = np.full(k, bool(settings.one_to_one) and k >= 2)
            report = {"one_to_one": settings.one_to_one}
        chosen = [name for name, one in zip(names, once.tolist()) if one]
        return chosen, {**report, "sources": list(names), "linked_one_to_one": chosen}

    def _sources_holding_entities_once(self, records: SparkRecords, scored) -> tuple[np.ndarray, dict]:
        """``clustering.sources_holding_entities_once`` counted with aggregations over the
        pairs at the match threshold (per source: records matched, records with a second
        record of their entity in it, second-record events, the events the matches' doubt
        explains), judged by ``clustering.judge_sources_once``."""
        from pyspark.sql import functions as F

        names = records.sources
        k = len(names)
        if k < 2:
            return np.zeros(k, dtype=bool), {}
        code = F.create_map(*[item for i, name in enumerate(names) for item in (F.lit(name), F.lit(i))])
        sources = records.frame.select("_idx", code[F.col("source")].alias("_s"))
        matches = (scored.filter(F.col("match_probability") >= self.settings.match_threshold)
                   .select("l", "r", (1.0 - F.col("match_probability")).alias("doubt"))
                   .join(sources.select(F.col("_idx").alias("l"), F.col("_s").alias("sl")), "l")
                   .join(sources.select(F.col("_idx").alias("r"), F.col("_s").alias("sr")), "r")).localCheckpoint()
        within = matches.filter(F.col("sl") == F.col("sr"))
        cross = matches.filter(F.col("sl") != F.col("sr"))
        # A record of another source that matches two or more records of t: keyed by
        # (outside record, t), its members the records of t.
        outside = (cross.select(F.col("l").alias("k"), F.col("sr").alias("t"), F.col("r").alias("member"))
                   .unionByName(cross.select(F.col("r").alias("k"), F.col("sl").alias("t"), F.col("l").alias("member"))))
        per_key = outside.groupBy("k", "t").agg(F.count("*").alias("n"))
        twice = (outside.join(per_key.filter(F.col("n") >= 2), ["k", "t"]).select(F.col("member").alias("rec"), "t")
                 .unionByName(within.select(F.col("l").alias("rec"), F.col("sl").alias("t")))
                 .unionByName(within.select(F.col("r").alias("rec"), F.col("sl").alias("t"))))
        ends = (matches.select(F.col("l").alias("rec"), F.col("sl").alias("t"))
                .unionByName(matches.select(F.col("r").alias("rec"), F.col("sr").alias("t"))))

        def per_source(frame, value) -> np.ndarray:
            counted = np.zeros(k)
            for row in frame.groupBy("t").agg(value.alias("x")).collect():
                counted[int(row["t"])] = float(row["x"] or 0)
            return counted

        matched = per_source(ends.distinct(), F.count("*")).astype(np.int64)
        second = per_source(twice.distinct(), F.count("*")).astype(np.int64)
        events = (per_source(within.withColumnRenamed("sl", "t"), F.count("*"))
                  + per_source(per_key, F.sum(F.col("n") - 1)))
        expected = (per_source(matches.withColumnRenamed("sl", "t"), F.sum("doubt"))
                    + per_source(cross.withColumnRenamed("sr", "t"), F.sum("doubt")))
        return judge_sources_once(matched, second, events, expected)

    def cluster(self, records: SparkRecords, scored, model, comparisons, once: list[str]):
        """Entities per record: components of the pairs that can be match edges, each
        clustered on its own by the embedded engine's rules."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

        settings = self.settings
        floor = min(settings.match_threshold, settings.one_to_one_threshold) if once else settings.match_threshold
        edges = scored.filter(F.col("match_probability") >= floor).select("l", "r")
        labels = connected_components(self.spark, edges).persist()  # _idx, _component
        frame = records.frame.select("_idx", "record_id", *records.compared_columns,
                                     *[c for c in records.frame.columns if c.startswith((COUNT_PREFIX, SHARED_PREFIX))])
        members = frame.join(labels, "_idx").localCheckpoint()
        inside = (scored.select("l", "r", "match_weight", "match_probability")
                  .join(labels.select(F.col("_idx").alias("l"), F.col("_component").alias("_c1")), "l")
                  .join(labels.select(F.col("_idx").alias("r"), F.col("_component").alias("_c2")), "r")
                  .filter(F.col("_c1") == F.col("_c2")).select("l", "r", "match_weight", "match_probability",
                                                               F.col("_c1").alias("_component"))
                  .localCheckpoint())
        schema = StructType([StructField("_idx", LongType()), StructField("entity_id", StringType()),
                             StructField("cluster_size", IntegerType()),
                             *[StructField(name, LongType()) for name in CLUSTER_REPORT]])
        n = records.n

        def clustered(component_records: pd.DataFrame, component_pairs: pd.DataFrame) -> pd.DataFrame:
            return cluster_component(component_records, component_pairs, model, comparisons, settings, once, n)

        # Components never interact, so many are clustered in one call (as the embedded
        # engine clusters all at once): a call per component would cost more than its work.
        buckets = max(int(self.spark.conf.get("spark.sql.shuffle.partitions")), n // RECORDS_PER_CLUSTERING_CALL)
        bucket = F.pmod(F.hash("_component"), F.lit(buckets))
        grouped = (members.withColumn("_bucket", bucket).groupBy("_bucket")
                   .cogroup(inside.withColumn("_bucket", bucket).groupBy("_bucket"))
                   .applyInPandas(clustered, schema)).persist()
        alone = (frame.select("_idx", "source", "record_id").join(labels, "_idx", "left_anti")
                 .mapInPandas(lambda batches: (_alone(b) for b in batches), schema))
        clusters = grouped.unionByName(alone)
        totals = grouped.agg(*[F.sum(name).alias(name) for name in CLUSTER_REPORT]).collect()[0]
        report = {name: int(totals[name] or 0) for name in CLUSTER_REPORT}
        report["components"] += records.n - labels.count()  # each record no pair can join
        return clusters.select("_idx", "entity_id", "cluster_size"), report

    def entities(self, records: SparkRecords, clusters):
        return records.frame.select("_idx", "record_id", "source").join(clusters, "_idx")

    def pairs_out(self, records: SparkRecords, scored, comparisons):
        """The rows of pairs.parquet (``Linker.pairs_frame``): pairs at or above the pairs
        floor, the record whose ``source:record_id`` sorts first on the left."""
        from pyspark.sql import functions as F

        keys = records.frame.select("_idx", "source", "record_id",
                                    F.concat_ws(":", "source", "record_id").alias("_key"))
        kept = (scored.filter(F.col("match_probability") >= self.settings.pairs_floor)
                .join(keys.select(*[F.col(c).alias("a" + c) for c in keys.columns]), F.col("l") == F.col("a_idx"))
                .join(keys.select(*[F.col(c).alias("b" + c) for c in keys.columns]), F.col("r") == F.col("b_idx")))
        swap = F.col("a_key") > F.col("b_key")
        columns = [F.when(swap, F.col("bsource")).otherwise(F.col("asource")).alias("source_l"),
                   F.when(swap, F.col("brecord_id")).otherwise(F.col("arecord_id")).alias("record_id_l"),
                   F.when(swap, F.col("asource")).otherwise(F.col("bsource")).alias("source_r"),
                   F.when(swap, F.col("arecord_id")).otherwise(F.col("brecord_id")).alias("record_id_r"),
                   "match_weight", "match_probability"]
        for j, comparison in enumerate(comparisons):
            columns += [F.col(f"g{j}").alias(f"level_{comparison.name}"),
                        F.col(f"w{j}").alias(f"weight_{comparison.name}")]
        return kept.orderBy("l", "r").select(*columns)

    def golden(self, records: SparkRecords, entities):
        """Golden records (``golden.golden_records``), an entity's records together."""
        from pyspark.sql import functions as F

        frame = records.frame.select("_idx", *records.record_columns).join(
            entities.select("_idx", "entity_id"), "_idx")
        priority = list(self.config.sources) or sorted(records.sources)
        sample = frame.limit(50).toPandas()
        shape = golden_records(sample.drop(columns=["_idx", "entity_id"]), sample["entity_id"].to_numpy(object),
                               priority)
        schema = artifacts.schema_of(shape)
        buckets = max(1, int(self.spark.conf.get("spark.sql.shuffle.partitions")))

        def golden_of(part: pd.DataFrame) -> pd.DataFrame:
            part = part.sort_values("_idx", kind="stable")
            out = golden_records(part.drop(columns=["_idx", "entity_id", "_bucket"]),
                                 part["entity_id"].to_numpy(object), priority)
            return artifacts.conform(out, shape)

        return (frame.withColumn("_bucket", F.abs(F.hash("entity_id")) % buckets)
                .groupBy("_bucket").applyInPandas(golden_of, schema))


def columns_compared(comparisons, training: list, record_columns: list[str]) -> list[str]:
    """The record columns comparisons read (an address reads all its parts, a given name its
    middle names), those the training rules' blocks are made of, and those every derived
    blocking key is made of, in the records' order."""
    wanted = {"source", "first_name", "last_name"}
    for comparison in comparisons:
        wanted |= comparison_columns(comparison)
        if getattr(comparison, "then_column", None):
            wanted.add(comparison.then_column)
    for rule in training:
        wanted |= rule_columns(rule)
    for made_of in key_sources().values():
        wanted |= set(made_of)
    return [c for c in record_columns if c in wanted]


def shuffle_by_step(spark) -> dict[str, dict[str, int]]:
    """Bytes each step's jobs wrote to and read from shuffles, from the application's status
    API (empty where the UI is off)."""
    import urllib.request

    context = spark.sparkContext
    if not context.uiWebUrl:
        return {}
    base = f"{context.uiWebUrl}/api/v1/applications/{context.applicationId}"
    try:
        with urllib.request.urlopen(f"{base}/jobs", timeout=10) as response:
            jobs = json.load(response)
        with urllib.request.urlopen(f"{base}/stages", timeout=10) as response:
            stages = {stage["stageId"]: stage for stage in json.load(response)}
    except OSError:
        return {}
    steps: dict[str, dict[str, int]] = {}
    for job in jobs:
        step = steps.setdefault(job.get("jobGroup") or "other", {"shuffle_write": 0, "shuffle_read": 0})
        for stage_id in job.get("stageIds", []):
            stage = stages.get(stage_id)
            if stage and stage.get("status") == "COMPLETE":
                step["shuffle_write"] += int(stage.get("shuffleWriteBytes", 0))
                step["shuffle_read"] += int(stage.get("shuffleReadBytes", 0))
    return steps


def _alone(batch: pd.DataFrame) -> pd.DataFrame:
    """Records no pair can join: an entity each, named as ``linker.entity_ids`` names it."""
    keys = (batch["source"].astype(str) + ":" + batch["record_id"].astype(str)).tolist()
    out = pd.DataFrame({"_idx": batch["_idx"].to_numpy(np.int64),
                        "entity_id": ["E" + hashlib.blake2b(k.encode(), digest_size=8).hexdigest() for k in keys],
                        "cluster_size": np.ones(len(batch), dtype=np.int32)})
    for name in CLUSTER_REPORT:
        out[name] = np.zeros(len(batch), dtype=np.int64)
    return out


def resolve_inputs(inputs: Sequence[str | Path], config: LinkageConfig) -> list[str]:
    """Local files and folders as ``ingest.input_files`` finds them; URIs (``hdfs://``,
    ``s3a://``, ``file://``...) as given."""
    local = [Path(p) for p in inputs if "://" not in str(p)]
    remote = [str(p) for p in inputs if "://" in str(p)]
    return [str(p) for p in (input_files(local, config) if local else [])] + remote

