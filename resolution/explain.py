"""Why two records were (or were not) merged: the per-field evidence of one pair.

Reads the artifacts of a resolve run (``records.parquet``, ``model.json``) and recomputes
the pair with the same comparisons and weights the run used, term frequencies included.
A pseudonymized run's records hold keyed hashes, on which similarity means nothing: there
the levels and weights are the ones the run wrote to ``pairs.parquet``, and the values shown
are the pseudonyms.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from identigraph.resolution.blocking import add_blocking_keys
from identigraph.resolution.comparisons import Address
from identigraph.resolution.encoding import EncodedRecords
from identigraph.resolution.model import FellegiSunterModel, comparison_matrix, score
from identigraph.resolution.semantic_types import default_comparisons


@dataclass(frozen=True)
class EvidenceRow:
    comparison: str
    value_a: str
    value_b: str
    level: str
    weight: float


@dataclass(frozen=True)
class Explanation:
    record_a: str
    record_b: str
    prior_weight: float
    rows: list[EvidenceRow]
    match_weight: float
    match_probability: float
    same_entity: bool | None


def _find(records: pd.DataFrame, reference: str) -> int:
    """Row of ``source:record_id``, or of a bare record id that only one source has."""
    if ":" in reference:
        source, _, record_id = reference.partition(":")
        hits = np.flatnonzero((records["source"] == source).to_numpy() & (records["record_id"] == record_id).to_numpy())
        if len(hits) == 0:
            hits = np.flatnonzero((records["record_id"] == reference).to_numpy())
    else:
        hits = np.flatnonzero((records["record_id"] == reference).to_numpy())
    if len(hits) == 0:
        raise KeyError(f"record {reference!r} is not among the resolved records; "
                       "use SOURCE:RECORD_ID as in entities.parquet")
    if len(hits) > 1:
        sources = sorted(records["source"].iloc[hits])
        raise KeyError(f"record id {reference!r} exists in several sources {sources}; write SOURCE:RECORD_ID")
    return int(hits[0])


def _shown(records: pd.DataFrame, row: int, comparison) -> str:
    columns = ("street", "postcode", "city") if isinstance(comparison, Address) else (comparison.column,)
    values = [records[c].iloc[row] for c in columns if c in records]
    return " | ".join("∅" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values)


def explain_pair(run_dir: Path, record_a: str, record_b: str) -> Explanation:
    run_dir = Path(run_dir)
    for name in ("records.parquet", "model.json"):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir / name} is missing; pass the --out folder of `identigraph resolve`")
    records = pd.read_parquet(run_dir / "records.parquet")
    model = FellegiSunterModel.from_json(json.loads((run_dir / "model.json").read_text()))
    a, b = _find(records, record_a), _find(records, record_b)
    encoded = EncodedRecords(records)
    add_blocking_keys(encoded)
    comparisons = {c.name: c for c in default_comparisons(encoded)}
    used = [comparisons[name] for name in model.comparisons]
    left, right = np.array([min(a, b)]), np.array([max(a, b)])
    run = run_dir / "run.json"
    if run.exists() and json.loads(run.read_text()).get("pseudonymized"):
        levels, weights, match_weight, probability = _written_pair(run_dir, records, int(left[0]), int(right[0]),
                                                                   model.comparisons)
    else:
        gamma = comparison_matrix(used, encoded, left, right, model.shared_value_limit)
        scores = score(model, gamma, encoded, used, left, right)
        levels, weights = gamma[0], scores.field_weights[0]
        match_weight, probability = scores.match_weight[0], scores.match_probability[0]
    rows = [EvidenceRow(c.name, _shown(records, int(left[0]), c), _shown(records, int(right[0]), c),
                        c.describe(int(levels[j])), float(weights[j]))
            for j, c in enumerate(used)]
    same = None
    entities_path = run_dir / "entities.parquet"
    if entities_path.exists():
        entity = pd.read_parquet(entities_path, columns=["entity_id"])["entity_id"].to_numpy()
        same = bool(entity[a] == entity[b])
    keys = (records["source"] + ":" + records["record_id"]).to_numpy()
    return Explanation(keys[left[0]], keys[right[0]], model.prior_weight(), rows,
                       float(match_weight), float(probability), same)


def _written_pair(run_dir: Path, records: pd.DataFrame, left: int, right: int, comparisons: list[str]):
    """Levels, field weights, match weight and probability of the pair as pairs.parquet has them."""
    pairs = pd.read_parquet(run_dir / "pairs.parquet")
    l_source, l_id, r_source, r_id = (records["source"].iloc[left], records["record_id"].iloc[left],
                                      records["source"].iloc[right], records["record_id"].iloc[right])
    hit = pairs[((pairs["source_l"] == l_source) & (pairs["record_id_l"] == l_id)
                 & (pairs["source_r"] == r_source) & (pairs["record_id_r"] == r_id))
                | ((pairs["source_l"] == r_source) & (pairs["record_id_l"] == r_id)
                   & (pairs["source_r"] == l_source) & (pairs["record_id_r"] == l_id))]
    if hit.empty:
        raise KeyError(f"this run is pseudonymized, so only the pairs in {run_dir / 'pairs.parquet'} (blocked "
                       "together and above the pairs floor) can be explained, and this pair is not among them")
    row = hit.iloc[0]
    return ([int(row[f"level_{name}"]) for name in comparisons], [float(row[f"weight_{name}"]) for name in comparisons],
            float(row["match_weight"]), float(row["match_probability"]))
