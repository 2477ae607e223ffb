"""Clerical review: uncertain pairs out to a person, their decisions back into the clusters.

``identigraph review export DIR --out pairs.csv`` writes the pairs whose match probability
lies between the auto-reject (``cannot_link_threshold``) and auto-accept
(``match_threshold``) thresholds, most uncertain first (match weight nearest 0, i.e.
probability nearest 0.5): both records side by side and, per comparison, the two values,
the agreement level and its weight. The reviewer fills ``decision`` with ``match`` or
``non-match`` (anything else, or blank, is skipped).

``identigraph review import DIR decisions.csv [--retrain]`` keeps every decision in
``review_decisions.parquet`` (later imports add to it; the newest decision on a pair wins),
then re-clusters: a ``match`` is a must-link (the pair is certain), a ``non-match`` a
cannot-link (the clustering guard never puts the two records in one customer). With
``--retrain`` the m probabilities are re-estimated first: each comparison's level counts
among the pairs decided ``match`` are added to the EM estimate, which weighs as
``PRIOR_PAIRS`` pairs; u stays (it comes from random pairs), and every stored pair is
scored again. Ids follow the incremental rules (``resolution.incremental.assign_ids``):
merges and splits go to ``lineage.parquet``.

Only the pairs in ``pairs.parquet`` (at or above ``pairs_floor``) and, inside small
components, the pairs clustering completes are re-scored; a full ``identigraph resolve
--model model.json`` reruns everything with the retrained model.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from identigraph.resolution.blocking import add_blocking_keys
from identigraph.resolution.clustering import cluster, match_edges_of_run
from identigraph.resolution.config import ModelSettings
from identigraph.resolution.encoding import EncodedRecords
from identigraph.resolution.incremental import LINEAGE_FILE, assign_ids, touched_by, updated_golden, with_lineage
from identigraph.resolution.ingest import customer_of_record, key_rank, record_keys
from identigraph.resolution.linker import entities_frame
from identigraph.resolution.model import FellegiSunterModel, comparison_matrix, pair_scorer, score
from identigraph.resolution.semantic_types import default_comparisons

DECISIONS_FILE = "review_decisions.parquet"
DECISIONS = {"match": True, "non-match": False}
# How many pairs the EM estimate of m counts as when the reviewed matches are added to it.
PRIOR_PAIRS = 200.0


class ReviewError(ValueError):
    """A decisions file that cannot be used; the message names the file, row and column."""


@dataclass
class ReviewResult:
    decisions: int  # decisions on file after this import
    must_links: int
    cannot_links: int
    entities_before: int
    entities_after: int
    merges: int
    splits: int
    retrained: bool = False
    m_change: dict = field(default_factory=dict)  # comparison -> largest change of an m probability


@dataclass
class _Run:
    directory: Path
    records: pd.DataFrame
    keys: np.ndarray
    encoded: EncodedRecords
    comparisons: list
    model: FellegiSunterModel
    pairs: pd.DataFrame
    left: np.ndarray
    right: np.ndarray
    row_of: pd.Series  # record key -> row in records


def _config(run_dir: Path):
    """The run's linkage.toml when it has one (inferred runs write it), else None."""
    from identigraph.resolution.config import load_config

    return load_config(run_dir / "linkage.toml") if (run_dir / "linkage.toml").exists() else None


def _settings(run_dir: Path) -> ModelSettings:
    config = _config(run_dir)
    return config.model if config is not None else ModelSettings()


def _source_priority(run_dir: Path, records: pd.DataFrame) -> list[str]:
    config = _config(run_dir)
    return list(config.sources) if config is not None and config.sources else sorted(records["source"].unique())


def _open_run(run_dir: Path) -> _Run:
    run_dir = Path(run_dir)
    for name in ("records.parquet", "pairs.parquet", "model.json", "entities.parquet"):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir / name} is missing; pass the --out folder of `identigraph resolve`")
    records = pd.read_parquet(run_dir / "records.parquet")
    keys = record_keys(records["source"], records["record_id"]).to_numpy(object)
    model = FellegiSunterModel.from_json(json.loads((run_dir / "model.json").read_text()))
    encoded = EncodedRecords(records)
    add_blocking_keys(encoded)
    available = {c.name: c for c in default_comparisons(encoded)}
    comparisons = [available[name] for name in model.comparisons]
    pairs = pd.read_parquet(run_dir / "pairs.parquet")
    row_of = pd.Series(np.arange(len(keys)), index=keys)
    a = row_of.reindex(record_keys(pairs["source_l"], pairs["record_id_l"])).to_numpy()
    b = row_of.reindex(record_keys(pairs["source_r"], pairs["record_id_r"])).to_numpy()
    return _Run(run_dir, records, keys, encoded, comparisons, model, pairs, np.minimum(a, b).astype(np.int64),
                np.maximum(a, b).astype(np.int64), row_of)


def export_uncertain_pairs(run_dir: Path, out: Path, limit: int | None = None,
                           settings: ModelSettings | None = None) -> int:
    """Writes the review CSV; returns the number of pairs in it."""
    run = _open_run(run_dir)
    settings = settings or _settings(Path(run_dir))
    pairs = run.pairs.assign(left=run.left, right=run.right)
    band = pairs[(pairs["match_probability"] >= settings.cannot_link_threshold)
                 & (pairs["match_probability"] < settings.match_threshold)]
    band = band.iloc[np.argsort(np.abs(band["match_weight"].to_numpy()), kind="stable")]
    if limit is not None:
        band = band.head(limit)
    out_frame = pd.DataFrame({"record_l": run.keys[band["left"]], "record_r": run.keys[band["right"]],
                              "match_probability": band["match_probability"].round(4).to_numpy(),
                              "match_weight": band["match_weight"].round(2).to_numpy(), "decision": ""})
    for comparison in run.comparisons:
        columns = ("street", "postcode", "city") if comparison.name == "address" else (comparison.column,)
        for side, rows in (("l", band["left"].to_numpy()), ("r", band["right"].to_numpy())):
            values = [run.records[c].to_numpy(object)[rows] for c in columns if c in run.records]
            out_frame[f"{comparison.name}_{side}"] = [" | ".join("" if v is None else str(v) for v in parts)
                                                      for parts in zip(*values)] if values else ""
        levels = band[f"level_{comparison.name}"].to_numpy()
        out_frame[f"{comparison.name}_level"] = [comparison.describe(int(level)) for level in levels]
        out_frame[f"{comparison.name}_weight"] = band[f"weight_{comparison.name}"].round(2).to_numpy()
    out_frame.to_csv(out, index=False)
    return len(out_frame)


def read_decisions(path: Path, known_keys: set[str]) -> pd.DataFrame:
    """``record_l``, ``record_r``, ``is_match`` of the rows with a decision."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, FileNotFoundError) as error:
        raise ReviewError(f"{path}: cannot be read as CSV ({error})") from error
    missing = [c for c in ("record_l", "record_r", "decision") if c not in frame.columns]
    if missing:
        raise ReviewError(f"{path}: column(s) {missing} missing; start from `identigraph review export`")
    decision = frame["decision"].str.strip().str.lower()
    given = decision != ""
    unknown_value = given & ~decision.isin(DECISIONS)
    if unknown_value.any():
        row = int(np.flatnonzero(unknown_value)[0])
        raise ReviewError(f"{path}, row {row + 2}, column 'decision': {frame['decision'].iloc[row]!r}; "
                          "write match or non-match (or leave it blank to skip the pair)")
    for column in ("record_l", "record_r"):
        unknown = given & ~frame[column].isin(known_keys)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise ReviewError(f"{path}, row {row + 2}, column {column!r}: {frame[column].iloc[row]!r} is not a "
                              "record of this run (SOURCE:RECORD_ID as exported)")
    chosen = frame[given]
    return pd.DataFrame({"record_l": chosen["record_l"].to_numpy(), "record_r": chosen["record_r"].to_numpy(),
                         "is_match": decision[given].map(DECISIONS).to_numpy(bool)})


def retrain_m(model: FellegiSunterModel, gamma_matches: np.ndarray) -> tuple[FellegiSunterModel, dict]:
    """m re-estimated from reviewed matches added to the EM estimate (weighing ``PRIOR_PAIRS``)."""
    m, change = [], {}
    for j, (name, old) in enumerate(zip(model.comparisons, model.m)):
        levels = gamma_matches[:, j]
        counts = np.bincount(levels[levels >= 0], minlength=len(old)).astype(float)
        updated = (np.asarray(old) * PRIOR_PAIRS + counts) / (PRIOR_PAIRS + counts.sum())
        m.append([float(x) for x in updated])
        change[name] = round(float(np.abs(updated - np.asarray(old)).max()), 4)
    return replace(model, m=m), change


def apply_review(run_dir: Path, decisions_file: Path, retrain: bool = False,
                 settings: ModelSettings | None = None) -> ReviewResult:
    run_dir = Path(run_dir)
    settings = settings or _settings(run_dir)
    run = _open_run(run_dir)
    new = read_decisions(decisions_file, set(run.keys))
    stored = run_dir / DECISIONS_FILE
    decided = pd.concat([pd.read_parquet(stored), new], ignore_index=True) if stored.exists() else new
    a, b = run.row_of[decided["record_l"]].to_numpy(), run.row_of[decided["record_r"]].to_numpy()
    decided = decided.assign(left=np.minimum(a, b), right=np.maximum(a, b))
    decided = decided.drop_duplicates(["left", "right"], keep="last")  # the newest decision on a pair wins

    left, right = run.left, run.right
    level_columns = [f"level_{c.name}" for c in run.comparisons]
    gamma = run.pairs[level_columns].to_numpy(np.int8)
    # Decided pairs missing from pairs.parquet (below the floor, or never blocked) are compared now.
    n = len(run.keys)
    known = pd.Index(left * n + right)
    extra = ~pd.Index(decided["left"] * n + decided["right"]).isin(known)
    if extra.any():
        extra_left, extra_right = decided["left"].to_numpy()[extra], decided["right"].to_numpy()[extra]
        gamma = np.vstack([gamma, comparison_matrix(run.comparisons, run.encoded, extra_left, extra_right,
                                                    run.model.shared_value_limit)])
        left, right = np.concatenate([left, extra_left]), np.concatenate([right, extra_right])
    model, change = run.model, dict[str, float]()
    position = pd.Series(np.arange(len(left)), index=left * n + right)  # row of each pair key in gamma
    if retrain:
        matched = decided[decided["is_match"]]
        model, change = retrain_m(run.model, gamma[position[matched["left"] * n + matched["right"]].to_numpy()])
        shutil.copyfile(run_dir / "model.json", run_dir / "model.before-review.json")
        model.save(run_dir / "model.json")
    scores = score(model, gamma, run.encoded, run.comparisons, left, right)
    probability = scores.match_probability.copy()
    weight = scores.match_weight.copy()
    at = position[decided["left"] * n + decided["right"]].to_numpy()
    probability[at] = np.where(decided["is_match"], 1.0, 0.0)
    weight[at] = np.where(decided["is_match"], float(weight.max(initial=0)) + 1.0, float(weight.min(initial=0)) - 1.0)
    order = np.lexsort((right, left))
    rank = key_rank(run.keys)
    # A person's decision stands over the one-to-one assignment too.
    match, _ = match_edges_of_run(settings, run.encoded, left, right, probability, rank)
    match[at] = decided["is_match"].to_numpy()

    labels, _ = cluster(n, left[order], right[order], weight[order], probability[order], settings.match_threshold,
                        settings.cannot_link_threshold,
                        pair_scorer(model, run.comparisons, run.encoded, model.shared_value_limit),
                        record_rank=rank, match=match[order])
    previous = customer_of_record(pd.read_parquet(run_dir / "entities.parquet")).reindex(run.keys).to_numpy(object)
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    evidence = pd.DataFrame({"key_l": run.keys[decided["left"]], "key_r": run.keys[decided["right"]],
                             "probability": np.where(decided["is_match"], 1.0, 0.0)})
    ids, events = assign_ids(run.keys, labels, previous, evidence[evidence["probability"] == 1.0], when)
    for event in events:
        event["evidence"] = "clerical review: " + event["evidence"]

    touched = set(ids[ids != previous]) | touched_by(events)
    entities_frame(run.records, ids, labels).to_parquet(run_dir / "entities.parquet", index=False)
    updated_golden(pd.read_parquet(run_dir / "golden.parquet"), run.records, ids, touched,
                   _source_priority(run_dir, run.records)).to_parquet(run_dir / "golden.parquet", index=False)
    if retrain:
        stored_pairs = run.pairs.copy()
        count = len(stored_pairs)
        stored_pairs["match_weight"] = scores.match_weight[:count]
        stored_pairs["match_probability"] = scores.match_probability[:count]
        for j, comparison in enumerate(run.comparisons):
            stored_pairs[f"weight_{comparison.name}"] = scores.field_weights[:count, j]
        stored_pairs.to_parquet(run_dir / "pairs.parquet", index=False)
    decided[["record_l", "record_r", "is_match"]].to_parquet(stored, index=False)
    lineage = pd.read_parquet(run_dir / LINEAGE_FILE) if (run_dir / LINEAGE_FILE).exists() else None
    with_lineage(lineage, events).to_parquet(run_dir / LINEAGE_FILE, index=False)
    return ReviewResult(decisions=len(decided), must_links=int(decided["is_match"].sum()),
                        cannot_links=int((~decided["is_match"]).sum()),
                        entities_before=int(pd.Series(previous).nunique()), entities_after=int(len(set(ids))),
                        merges=sum(e["event"] == "merge" for e in events),
                        splits=sum(e["event"] == "split" for e in events), retrained=retrain, m_change=change)
