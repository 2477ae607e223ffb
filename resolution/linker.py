"""``Linker``: the resolution pipeline behind one object, each step a small component.

ingest -> encode -> block -> compare -> train (u by sampling, m by EM) -> score -> cluster ->
golden records -> artifacts. ``identigraph resolve`` is a thin shell over ``Linker.run``.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from identigraph.resolution.blocking import (
    BlockingResult,
    add_blocking_keys,
    block,
    comparison_columns,
    default_rules,
    fallback_training_rules,
    group_ids,
    possible_pairs,
    probe_pairs,
    random_pairs,
    rule_columns,
    training_rules,
)
from identigraph.resolution.clustering import cluster, match_edges_of_run
from identigraph.resolution.comparisons import Comparison
from identigraph.resolution.config import ConfigError, LinkageConfig, config_to_toml, load_config
from identigraph.resolution.encoding import ColumnStatistics, EncodedRecords
from identigraph.resolution.erasure import FORGOTTEN_FILE, read_forgotten
from identigraph.resolution.golden import ATTRIBUTES as GOLDEN_ATTRIBUTES
from identigraph.resolution.golden import golden_records
from identigraph.resolution.ingest import SourceStats, ingest, input_files, key_rank, record_keys, write_profile
from identigraph.resolution.model import (
    FellegiSunterModel,
    check_model_fits,
    combine_weights,
    comparison_matrix,
    estimate_u,
    pair_scorer,
    pattern_index,
    score,
    train_em,
    train_lambda,
)
from identigraph.resolution.model import initial_m as _initial_m_shape
from identigraph.resolution.privacy import PII_RECORD_COLUMNS, WITHHELD_RAW, pseudonymize_frame, pseudonymize_records
from identigraph.resolution.semantic_types import BlockingRule, default_comparisons


@dataclass
class ResolutionResult:
    out_dir: Path
    records: int
    entities: int
    quarantined: int
    read: int
    candidate_pairs: int
    reduction_ratio: float
    stats: dict[str, SourceStats]
    blocking: list[dict]
    clustering: dict
    em: dict
    seconds: dict[str, float] = field(default_factory=dict)
    pseudonymized: bool = False  # PII in the artifacts replaced by keyed pseudonyms (resolution.privacy)
    # Incremental runs (resolve --previous): the batch's effect on the earlier customers.
    incremental: dict = field(default_factory=dict)
    # Likely matches (at or above the match threshold) among the candidates and, estimated,
    # among the pairs no rule produced (resolution.blocking.probe_pairs); the share blocking reached.
    blocking_recall: dict = field(default_factory=dict)
    # The region national phone numbers were read in (the config's, or inferred from the
    # inputs): matching one record later reads its numbers the same way.
    phone_region: str | None = None
    # The order each source's dates of birth were read in (standardise.date_format_order):
    # a record of that source matched later is read the same way.
    date_formats: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


# Golden attribute -> the record column its value is taken from, for those that are PII.
GOLDEN_PII_DOMAINS = {attribute: shown for attribute, (shown, _) in GOLDEN_ATTRIBUTES.items()
                      if shown in PII_RECORD_COLUMNS}


def entities_frame(records: pd.DataFrame, ids: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """The rows of entities.parquet: each record's customer and the size of its cluster."""
    frame = pd.DataFrame({"record_id": records["record_id"], "source": records["source"], "entity_id": ids})
    frame["cluster_size"] = np.bincount(labels)[labels].astype(np.int32)
    return frame


def entity_ids(keys: np.ndarray, rank: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Stable ids: a hash of the cluster's smallest ``source:record_id``, so the same
    cluster gets the same id whatever else is in the run. ``keys`` are the records'
    ``source:record_id`` and ``rank`` their ``key_rank``."""
    if len(labels) == 0:
        return np.empty(0, dtype=object)
    smallest = np.full(int(labels.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, labels, rank)
    record_of_rank = np.empty(int(rank.max()) + 1, dtype=np.int64)
    record_of_rank[rank] = np.arange(len(rank))  # records with equal keys share a rank, and any of them will do
    used = np.unique(labels)
    ids = np.empty(len(smallest), dtype=object)
    ids[used] = ["E" + hashlib.blake2b(k.encode(), digest_size=8).hexdigest()
                 for k in keys[record_of_rank[smallest[used]]]]
    return ids[labels]


def prior_counting_pairs_outside_candidates(model: FellegiSunterModel, blocking_recall: dict) -> FellegiSunterModel:
    """The model with its prior (matches per random pair) divided by blocking's estimated
    recall ceiling: training counts the matches among the candidates, and where blocking
    reaches only part of the likely matches (the probe sample's estimate), the others are
    matches too. A prolific person under a common name is blocked by sorted neighbourhood
    inside the name's block, so most of their pairs are not candidates (PatentsView: a
    ceiling of 0.20), and the prior from the candidates alone was 5x too small; where
    blocking reaches nearly every likely match (FEBRL, RLdata, the synthetic channels: 0.97
    and up) the prior hardly moves."""
    ceiling = float(blocking_recall.get("recall_ceiling", 1.0))
    if not 0.0 < ceiling < 1.0:
        return model
    blocking_recall["prior_scaled_by"] = round(1.0 / ceiling, 4)
    return replace(model, lambda_=min(model.lambda_ / ceiling, 0.5))


def is_a_link_between_sources(settings, one_to_one: dict, model_given: bool) -> bool:
    """With ``one_to_one = "auto"``, a run that links and dedupes whose every source the
    matches show to hold each entity once (``clustering.sources_holding_entities_once``),
    and a model of its own to train: it is linked again as link_only, one-to-one."""
    return (settings.one_to_one == "auto" and settings.link_type == "link_and_dedupe"
            and not model_given and len(one_to_one["sources"]) >= 2
            and len(one_to_one["linked_one_to_one"]) == len(one_to_one["sources"]))


def session_rules(encoded: ColumnStatistics) -> list[tuple[BlockingRule, bool]]:
    """The m-estimation sessions' rules, each with whether it is a fallback (a session that
    only learns what no main session could)."""
    return ([(rule, False) for rule in training_rules(encoded)]
            + [(rule, True) for rule in fallback_training_rules(encoded)])


def train_on_patterns(settings, comparisons: list[Comparison], u_random: list[list[float]],
                      all_patterns: np.ndarray, pattern_counts: np.ndarray,
                      rules: list[tuple[BlockingRule, bool]], session_counts: Callable[[BlockingRule], np.ndarray],
                      possible: int) -> FellegiSunterModel:
    """m by EM in sessions, one per training blocking rule, each leaving out the comparisons
    its rule forces to agree (they carry no information there, and left in they make EM's
    "match" class mean "same name"); lambda by EM over all candidates with m and u fixed.

    Everything comes from counts: ``all_patterns`` (the candidates' distinct comparison
    patterns, in ``pattern_index`` order), ``pattern_counts`` (candidates per pattern),
    ``session_counts(rule)`` (per pattern, the candidates whose records share a block of
    ``rule``) and ``possible`` (record pairs of the link type), so an engine that counts
    them elsewhere (Spark) trains the same model."""
    level_counts = [len(c.levels) for c in comparisons]
    estimates: list[list[np.ndarray]] = [[] for _ in comparisons]
    iterations, converged = 0, True
    for rule, fallback in rules:
        # A fallback session only learns what no main session could.
        learns = [j for j, e in enumerate(estimates) if not e] if fallback else list(range(len(comparisons)))
        if not learns:
            continue
        counts = session_counts(rule)
        if counts.sum() < MIN_SESSION_PAIRS:
            continue
        present = np.flatnonzero(counts)
        session = all_patterns[present].copy()
        forced = [j for j, c in enumerate(comparisons) if set(comparison_columns(c)) & set(rule_columns(rule))]
        session[:, forced] = -1
        m_session, _, _, its, ok = train_em(session, level_counts, u_random, settings.em_max_iterations,
                                            settings.em_tolerance, patterns=(session, counts[present]))
        iterations = max(iterations, its)
        converged &= ok
        for j in learns:
            if j not in forced:
                estimates[j].append(np.asarray(m_session[j]))
    m = [list(map(float, np.mean(e, axis=0))) if e else [float(x) for x in _initial_m_shape(k)]
         for e, k in zip(estimates, level_counts)]
    pairs = int(pattern_counts.sum())
    lambda_candidates = (train_lambda(all_patterns, m, u_random, patterns=(all_patterns, pattern_counts))
                         if pairs else 0.5)
    # The matches among the candidates; ``prior_counting_pairs_outside_candidates`` adds
    # those blocking left out once the pairs are scored.
    expected_matches = lambda_candidates * pairs
    lambda_random = float(np.clip(expected_matches / max(possible, 1), 1e-12, 0.5))
    return FellegiSunterModel(
        comparisons=[c.name for c in comparisons], levels=[list(c.levels) for c in comparisons], m=m,
        u=u_random, lambda_=lambda_random, lambda_candidates=lambda_candidates,
        tf_comparisons=[c.name for c in comparisons if c.tf], pairs_trained=pairs,
        shared_value_limit=settings.shared_value_limit,
        iterations=iterations, converged=converged)


# Pairs outside the candidates scored per refining column to estimate blocking's recall.
PROBE_PAIRS_PER_COLUMN = 20_000
# An EM session with fewer pairs says nothing: m stays at its prior.
MIN_SESSION_PAIRS = 20


class TimedSteps:
    """A run's named steps: each announced to ``progress`` as it starts, its seconds kept in
    ``seconds`` (run.json). ``_step("")`` closes the last one."""

    progress: Callable[[str], None]
    seconds: dict[str, float]
    _current = ""
    _started = 0.0

    def _step(self, name: str) -> None:
        now = time.perf_counter()
        if self._started and self._current:
            self.seconds[self._current] = round(now - self._started, 3)
        self._current, self._started = name, now
        if name:
            self._starting(name)
            self.progress(name)

    def _starting(self, name: str) -> None:
        """What an engine does as a step starts (nothing, here)."""


class Linker(TimedSteps):
    def __init__(self, config: LinkageConfig, progress: Callable[[str], None] | None = None):
        self.config = self.configured = config
        self.settings = config.model
        self.progress = progress or (lambda message: None)
        self.seconds: dict[str, float] = {}
        self._started = 0.0

    def write_config(self, out_dir: Path) -> None:
        """``linkage.toml`` beside the artifacts: later steps (review, incremental runs) map
        records as this run did. An equal file (an inferred config with its notes) is kept."""
        path = Path(out_dir) / "linkage.toml"
        try:
            if path.exists() and load_config(path) == self.config:
                return
        except ConfigError:
            pass
        path.write_text(config_to_toml(self.config, header="The config this run used (identigraph resolve)."))

    def run_incremental(self, inputs: list[Path], previous_dir: Path, out_dir: Path,
                        fast: bool = False) -> ResolutionResult:
        """Links a new batch against the customers of ``previous_dir`` with its saved model;
        earlier ids are kept (``resolution.incremental``). ``fast``: earlier pairs and
        customers as they were, only the new records' pairs scored."""
        from identigraph.resolution.incremental import link_incremental

        return link_incremental(self, inputs, previous_dir, out_dir, fast=fast)

    # Components, usable on their own -------------------------------------------------
    def comparisons(self, encoded: EncodedRecords) -> list[Comparison]:
        return default_comparisons(encoded)

    def block(self, encoded: EncodedRecords) -> BlockingResult:
        add_blocking_keys(encoded)
        return block(encoded, default_rules(encoded), self.settings.link_type, self.settings.max_block_size)

    def random_pair_u(self, encoded: EncodedRecords, comparisons: list[Comparison]) -> list[list[float]]:
        """u of every level from random record pairs (almost all of different people)."""
        rl, rr = random_pairs(encoded, self.settings.u_sample_pairs, self.settings.link_type, self.settings.seed)
        return estimate_u(comparison_matrix(comparisons, encoded, rl, rr, self.settings.shared_value_limit),
                          [len(c.levels) for c in comparisons])

    def train(self, encoded: EncodedRecords, comparisons: list[Comparison], gamma: np.ndarray,
              blocked: BlockingResult, u_random: list[list[float]] | None = None) -> FellegiSunterModel:
        """u from random pairs (``random_pair_u``, unless given), then m and lambda from the
        candidates' comparison patterns (``train_on_patterns``)."""
        if u_random is None:
            u_random = self.random_pair_u(encoded, comparisons)
        # Each session is a subset of the candidates: its patterns are counted on the
        # candidates' distinct patterns, not found again in millions of rows.
        all_patterns, pattern_of_pair = pattern_index(gamma)

        def session_counts(rule) -> np.ndarray:
            # The candidates this rule would have produced: both records in one of its blocks.
            groups = group_ids(encoded, rule.columns)
            found = (groups[blocked.left] == groups[blocked.right]) & (groups[blocked.left] >= 0)
            return np.bincount(pattern_of_pair[found], minlength=len(all_patterns))

        return train_on_patterns(self.settings, comparisons, u_random, all_patterns,
                                 np.bincount(pattern_of_pair, minlength=len(all_patterns)),
                                 session_rules(encoded), session_counts,
                                 possible_pairs(encoded, self.settings.link_type))

    def blocking_recall(self, encoded: EncodedRecords, blocked: BlockingResult, scores, score_pairs) -> dict:
        """How many likely matches (pairs at or above the match threshold) blocking left out,
        estimated by scoring a sample of the pairs that share a name's sound, a date, a
        place... but were not candidates, each counted 1 / its chance of being sampled."""
        threshold = self.settings.match_threshold
        probe = probe_pairs(encoded, blocked, self.settings.link_type, PROBE_PAIRS_PER_COLUMN, self.settings.seed)
        found = int((scores.match_probability >= threshold).sum())
        likely = score_pairs(probe.left, probe.right) >= threshold if len(probe.left) else np.zeros(0, bool)
        missed = float((1.0 / probe.inclusion[likely]).sum())
        return {"likely_matches_in_candidates": found, "likely_matches_missed": round(missed, 1),
                "recall_ceiling": round(found / (found + missed), 4) if found + missed else 1.0,
                "probe_pairs_scored": int(len(probe.left))}

    # The whole run ------------------------------------------------------------------
    def run(self, inputs: list[Path], out_dir: Path, model: FellegiSunterModel | None = None,
            pseudonym_key: bytes | None = None, forgotten: dict[str, str] | None = None) -> ResolutionResult:
        """``pseudonym_key``: link on the clear values, write keyed pseudonyms of the PII
        (``resolution.privacy``). ``forgotten``: record key -> forget request id, records
        quarantined instead of linked (``resolution.erasure``); by default the
        ``forgotten.jsonl`` of ``out_dir`` when there is one."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        # (A run that finds its sources one-to-one links them as link_only; the next starts
        # from the config as given.)
        self.config, self.settings = self.configured, self.configured.model
        self._step("reading and standardising")
        files = input_files(inputs, self.config)
        if forgotten is None and (out_dir / FORGOTTEN_FILE).exists():
            forgotten = read_forgotten(out_dir / FORGOTTEN_FILE)
        ingested = ingest(files, self.config, forgotten)
        records_table = ingested.records_table
        if pseudonym_key is not None:
            records_table = pseudonymize_records(records_table, pseudonym_key)
        # One background thread, for the second core: the standardised records do not depend
        # on linkage, so Arrow writes them while this thread blocks (2-3 s of a million-record
        # run); later it compares the random pairs for u and writes the other artifacts.
        with ThreadPoolExecutor(max_workers=1) as background:
            written = [background.submit(pq.write_table, records_table, out_dir / "records.parquet")]
            result = self._link(ingested, out_dir, model, pseudonym_key, background, written)
        (out_dir / "run.json").write_text(json.dumps(result.to_json(), indent=2, default=str))
        return result

    def _link(self, ingested, out_dir: Path, model: FellegiSunterModel | None, pseudonym_key: bytes | None,
              background: ThreadPoolExecutor, written: list[Future]) -> ResolutionResult:
        """``run`` from the ingested records on. ``background`` writes artifacts while the
        next is computed; ``written``: its writes so far, all done on return."""
        settings = self.settings
        model_given = model is not None
        records = ingested.records
        self._step("blocking")
        encoded = EncodedRecords(records, ingested.records_table, ingested.encoded)
        comparisons = self.comparisons(encoded)
        blocked = self.block(encoded)
        left, right = blocked.left, blocked.right
        self._step("comparing")
        # The random pairs for u are compared in the background meanwhile: most of the work
        # is in numpy, pandas and rapidfuzz, which let the other core run.
        u_random = background.submit(self.random_pair_u, encoded, comparisons) if model is None else None
        gamma = comparison_matrix(comparisons, encoded, left, right, settings.shared_value_limit)
        self._step("training (u by sampling, m by EM)")
        if model is None:
            model = self.train(encoded, comparisons, gamma, blocked, u_random.result() if u_random else None)
        else:
            check_model_fits(model, comparisons, "retrain without --model")
        self._step("scoring")
        scores = score(model, gamma, encoded, comparisons, left, right)
        score_pairs = pair_scorer(model, comparisons, encoded, settings.shared_value_limit)
        blocking_recall = self.blocking_recall(encoded, blocked, scores, score_pairs)
        if not model_given:
            model = prior_counting_pairs_outside_candidates(model, blocking_recall)
            scores = combine_weights(model, gamma, comparisons, scores.field_weights)
            score_pairs = pair_scorer(model, comparisons, encoded, settings.shared_value_limit)
        self._step("clustering")
        keys = record_keys(records["source"], records["record_id"]).to_numpy(object)
        rank = key_rank(keys)
        match, one_to_one = match_edges_of_run(settings, encoded, left, right, scores.match_probability, rank)
        if is_a_link_between_sources(self.settings, one_to_one, model_given):
            # Every source holds each entity once: pairs inside a source are all different
            # entities, and left in they dilute the prior and u that training learns. Linked
            # as link_only from blocking on, as a user who knew it would have configured.
            self.settings = replace(settings, link_type="link_only", one_to_one=True)
            self.config = replace(self.config, model=self.settings)
            self.progress("every source lists each entity once: linking the sources one-to-one")
            self._step("")
            judging = sum(self.seconds.pop(step, 0.0) for step in list(self.seconds) if step != "reading and standardising")
            result = self._link(ingested, out_dir, None, pseudonym_key, background, written)
            result.clustering["one_to_one"]["judged_from"] = one_to_one
            result.seconds["judging the sources (linked and deduped first)"] = round(judging, 3)
            return result
        labels, cluster_report = cluster(encoded.n, left, right, scores.match_weight, scores.match_probability,
                                         settings.match_threshold, settings.cannot_link_threshold, score_pairs,
                                         record_rank=rank, match=match)
        cluster_report["one_to_one"] = one_to_one
        ids = entity_ids(keys, rank, labels)
        self._step("golden records and artifacts")
        entities = entities_frame(records, ids, labels)
        written.append(background.submit(entities.to_parquet, out_dir / "entities.parquet", index=False))
        written.append(background.submit(self.pairs_frame(records, comparisons, left, right, gamma, scores, rank).to_parquet,
                                     out_dir / "pairs.parquet", index=False))
        # The levels and weights of every candidate (hundreds of MB at a million records) are
        # in the pairs frame now; golden records are built without them.
        del gamma, scores, keys
        source_priority = list(self.config.sources) or sorted(records["source"].unique())
        golden = golden_records(records, ids, source_priority, encoded.codes_so_far(), labels)
        quarantine = ingested.quarantine
        if pseudonym_key is not None:
            golden = pseudonymize_frame(golden, pseudonym_key, GOLDEN_PII_DOMAINS)
            quarantine = quarantine.assign(raw=WITHHELD_RAW)
        golden.to_parquet(out_dir / "golden.parquet", index=False)
        quarantine.to_parquet(out_dir / "quarantine.parquet", index=False)
        model.save(out_dir / "model.json")
        write_profile(ingested.profile, out_dir / "profile.json")
        self.write_config(out_dir)
        for write in written:
            write.result()
        self._step("")
        result = ResolutionResult(
            out_dir=out_dir, records=len(records), entities=int(entities["entity_id"].nunique()),
            quarantined=len(ingested.quarantine), read=sum(s.read for s in ingested.stats.values()),
            candidate_pairs=len(left), reduction_ratio=blocked.reduction_ratio, stats=ingested.stats,
            blocking=[asdict(r) for r in blocked.reports], clustering=cluster_report,
            em={"iterations": model.iterations, "converged": model.converged, "lambda": model.lambda_},
            seconds=dict(self.seconds), pseudonymized=pseudonym_key is not None, blocking_recall=blocking_recall,
            phone_region=ingested.phone_region, date_formats=ingested.date_formats)
        return result

    def pairs_frame(self, records: pd.DataFrame, comparisons: list[Comparison], left: np.ndarray,
                    right: np.ndarray, gamma: np.ndarray, scores, rank: np.ndarray) -> pd.DataFrame:
        """The rows of pairs.parquet: scored pairs at or above the pairs floor, each with the
        record whose ``source:record_id`` sorts first (``rank``, the records' ``key_rank``) on
        the left, whatever the records' order."""
        keep = np.flatnonzero(scores.match_probability >= self.settings.pairs_floor)
        source = records["source"].to_numpy(object)
        record_id = records["record_id"].to_numpy(object)
        swap = rank[left[keep]] > rank[right[keep]]
        first, second = np.where(swap, right[keep], left[keep]), np.where(swap, left[keep], right[keep])
        frame = pd.DataFrame({
            "source_l": source[first], "record_id_l": record_id[first],
            "source_r": source[second], "record_id_r": record_id[second],
            "match_weight": scores.match_weight[keep], "match_probability": scores.match_probability[keep],
        })
        for j, comparison in enumerate(comparisons):
            frame[f"level_{comparison.name}"] = gamma[keep, j]
            frame[f"weight_{comparison.name}"] = scores.field_weights[keep, j]
        return frame
