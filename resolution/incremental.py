"""Incremental linking: a new batch against the customers of an earlier run, ids kept.

``identigraph resolve NEW... --previous DIR --out DIR2`` (``Linker.run_incremental``):

1. The new batch is read and standardised as in a full run; the earlier run's standardised
   records are read back, not read and standardised again. A new record whose
   ``source:record_id`` the earlier run had replaces it (an update).
2. Blocking, comparison and scoring run over all records with the earlier run's model (no
   training), and clustering starts afresh, so the customers are exactly those of a full
   rerun with that model: the whole-data statistics a new batch shifts (term frequencies,
   an e-mail that now has a third given name on it, a block that outgrew its cap) apply
   to earlier pairs too. Clustering breaks ties by record key, never by the order records
   were read in, which differs between the two runs.
3. Ids. A customer made only of earlier records of one earlier customer keeps its id. The
   survivor rule where earlier customers merge: the one with the most records in the new
   customer keeps its id; a tie goes to the id that sorts first. Where an earlier customer
   is split (an updated record moved away, or new statistics no longer link its records),
   the part with most of its records keeps the id. Every other customer gets a new id:
   ``E`` + a hash of its smallest ``source:record_id`` (as in a full run), re-hashed if that
   id was ever used. Each merge and split is a row of ``lineage.parquet``.
4. Golden records are recomputed for the customers the batch touched and carried over for
   the rest.

``fast`` (``--fast``): only pairs with a new record are blocked and scored; the earlier
pairs keep the scores of their run, each earlier customer's records are held together,
and only components holding a new record are clustered again. Quicker on a large earlier
run; customers can differ from a full rerun where the batch shifts whole-data statistics
(docs/benchmarks.md measures how often).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Container
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from identigraph.resolution.blocking import add_blocking_keys, block, default_rules
from identigraph.resolution.clustering import cluster, match_edges_of_run
from identigraph.resolution.encoding import EncodedRecords, records_from_arrow
from identigraph.resolution.erasure import FORGOTTEN_FILE, read_forgotten
from identigraph.resolution.golden import golden_records
from identigraph.resolution.ingest import (
    WrittenRecords,
    customer_of_record,
    ingest,
    input_files,
    key_rank,
    record_keys,
    write_profile,
)
from identigraph.resolution.linker import ResolutionResult, entities_frame
from identigraph.resolution.model import FellegiSunterModel, check_model_fits, comparison_matrix, pair_scorer, score
from identigraph.resolution.record_log import RECORD_LOG_FILE, read_record_log

LINEAGE_FILE = "lineage.parquet"
LINEAGE_COLUMNS = ("event", "old_ids", "new_id", "evidence", "at")
PREVIOUS_ARTIFACTS = ("model.json", "records.parquet", "entities.parquet", "pairs.parquet", "golden.parquet")


def fresh_customer_id(key: str, taken: Container[str], also_taken: Container[str] = frozenset()) -> str:
    """``E`` + a hash of the customer's smallest record key, re-hashed while the id is taken."""
    candidate, salt = "E" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest(), 0
    while candidate in taken or candidate in also_taken:  # an id once used is never given to another customer
        salt += 1
        candidate = "E" + hashlib.blake2b(f"{key}#{salt}".encode(), digest_size=8).hexdigest()
    return candidate


def assign_ids(keys: np.ndarray, labels: np.ndarray, previous_id: np.ndarray, pairs: pd.DataFrame,
               at: str, also_taken: Container[str] = frozenset()) -> tuple[np.ndarray, list[dict]]:
    """Customer id per record and the lineage events (module docstring: the rules).
    ``also_taken``: ids used before that these records do not show (the API's, served).

    ``previous_id``: the earlier customer of each record, None for new records; ``pairs``:
    new scored pairs (``key_l``, ``key_r``, ``probability``) for the evidence of merges."""
    frame = pd.DataFrame({"label": labels, "old": previous_id, "key": keys})
    old = frame.dropna(subset=["old"])
    counts = old.groupby(["label", "old"], sort=False).size().rename("n").reset_index()
    ever_used = set(old["old"].unique())
    # The common case in bulk: a label holding one earlier customer, all of whose records it holds.
    simple = ~counts["label"].duplicated(keep=False) & ~counts["old"].duplicated(keep=False)
    kept = pd.Series(counts.loc[simple, "old"].to_numpy(), index=counts.loc[simple, "label"].to_numpy())
    # The rest (merges, splits) greedily: the largest (label, earlier id) overlaps first; ties to the id sorting first.
    contested = counts[~simple].sort_values(["n", "old", "label"], ascending=[False, True, True])
    kept_label: dict[int, str] = {}
    kept_old: set[str] = set()
    for label, old_id in zip(contested["label"].to_numpy(), contested["old"].to_numpy()):
        if label not in kept_label and old_id not in kept_old:
            kept_label[int(label)] = old_id
            kept_old.add(old_id)
    if kept_label:
        kept = pd.concat([kept, pd.Series(kept_label, dtype=object)])
    unnamed = frame[~frame["label"].isin(kept.index)]
    taken = set(ever_used)
    fresh = {}
    for label, smallest in unnamed.groupby("label")["key"].min().items():
        fresh[int(label)] = fresh_customer_id(smallest, taken, also_taken)
        taken.add(fresh[int(label)])
    id_of_label = pd.concat([kept, pd.Series(fresh, dtype=object)]) if fresh else kept
    ids = id_of_label.reindex(labels).to_numpy(object)
    counts = contested

    events = []
    several_old = counts["label"].duplicated(keep=False)  # labels holding records of two earlier customers or more
    merged = counts[several_old].groupby("label")["old"].agg(sorted)
    members_of = frame[frame["label"].isin(merged.index)].groupby("label")["key"].agg(set)
    for label, olds in merged.items():
        members = members_of[label]
        inside = pairs[pairs["key_l"].isin(members) & pairs["key_r"].isin(members)]
        # A multi-key sort is stable; a one-key sort is numpy's quicksort, whose order of
        # ties depends on the CPU's SIMD instructions.
        strongest = inside.sort_values(["probability", "key_l", "key_r"], ascending=[False, True, True]).head(1)
        evidence = ("; ".join(f"{r.key_l} ~ {r.key_r} (match probability {r.probability:.3f})"
                              for r in strongest.itertuples()) or "linked through the new records")
        events.append({"event": "merge", "old_ids": list(olds), "new_id": id_of_label[label],
                       "evidence": evidence, "at": at})
    spread = counts[counts["old"].duplicated(keep=False)].groupby("old")["label"].agg(list)
    for old_id, parts in spread.items():
        for label in parts:
            new_id = id_of_label[int(label)]
            if new_id != old_id:
                moved = int(((frame["label"] == label) & (frame["old"] == old_id)).sum())
                events.append({"event": "split", "old_ids": [old_id], "new_id": new_id,
                               "evidence": f"{moved} record(s) of {old_id} no longer link to its other records",
                               "at": at})
    return ids, events


def touched_by(events: list[dict]) -> set[str]:
    """Every customer id a lineage event names."""
    return {e["new_id"] for e in events} | {i for e in events for i in e["old_ids"]}


def updated_golden(golden: pd.DataFrame, records: pd.DataFrame, ids: np.ndarray, touched: set[str],
                   source_priority: list[str]) -> pd.DataFrame:
    """Golden records recomputed for the ``touched`` customers, carried over for the rest
    (customers no longer in ``ids`` dropped)."""
    rows = pd.Series(ids).isin(touched).to_numpy()  # pandas' hash join: numpy's isin is quadratic on objects
    fresh = golden_records(records[rows].reset_index(drop=True), ids[rows], source_priority)
    kept = golden[~golden["entity_id"].isin(touched) & golden["entity_id"].isin(set(ids))]
    return pd.concat([kept, fresh], ignore_index=True).sort_values("entity_id")


def with_lineage(lineage: pd.DataFrame | None, events: list[dict]) -> pd.DataFrame:
    """The lineage so far (or none) with ``events`` appended."""
    added = pd.DataFrame(events, columns=list(LINEAGE_COLUMNS))
    return added if lineage is None else pd.concat([lineage, added], ignore_index=True)


def _chain_edges(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges joining consecutive records of each group (``codes`` >= 0): its members stay one component."""
    rows = np.flatnonzero(codes >= 0)
    rows = rows[np.argsort(codes[rows], kind="stable")]
    same = codes[rows[1:]] == codes[rows[:-1]]
    return rows[:-1][same], rows[1:][same]


def _cluster_from_previous(n: int, left: np.ndarray, right: np.ndarray, scores, previous_codes: np.ndarray,
                           new: np.ndarray, scorer, rank: np.ndarray, settings,
                           match: np.ndarray) -> tuple[np.ndarray, dict]:
    """The fast mode's clustering: each earlier customer's records held together by certain
    edges (``previous_codes``: the earlier customer per record as an integer, -1 for new
    records), the new pairs added (``match``: which are match edges), only components
    holding a new record completed."""
    chain_left, chain_right = _chain_edges(previous_codes)
    certain = float(scores.match_weight.max(initial=0.0)) + 1.0  # replayed first by the guard
    all_left, all_right = np.concatenate([left, chain_left]), np.concatenate([right, chain_right])
    order = np.lexsort((all_right, all_left))
    probability = np.concatenate([scores.match_probability, np.ones(len(chain_left))])[order]
    weight = np.concatenate([scores.match_weight, np.full(len(chain_left), certain, dtype=np.float32)])[order]
    all_match = np.concatenate([match, np.ones(len(chain_left), dtype=bool)])[order]
    return cluster(n, all_left[order], all_right[order], weight, probability, settings.match_threshold,
                   settings.cannot_link_threshold, scorer, focus=new, record_rank=rank, match=all_match)


def read_previous(previous_dir: Path, with_pairs: bool = True) -> dict:
    """The earlier run's artifacts; its pairs only when ``with_pairs`` (the fast mode keeps them,
    the default recomputes every pair)."""
    previous_dir = Path(previous_dir)
    missing = [name for name in PREVIOUS_ARTIFACTS if not (previous_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"{previous_dir}: {', '.join(missing)} missing; --previous takes the --out folder "
                                "of an earlier `identigraph resolve`")
    run = json.loads((previous_dir / "run.json").read_text()) if (previous_dir / "run.json").exists() else {}
    if run.get("pseudonymized"):
        raise ValueError(f"{previous_dir} was resolved with --pseudonymize: its records hold pseudonyms, on which "
                         "new records cannot be compared; link incrementally against a clear run")
    return {"model": FellegiSunterModel.from_json(json.loads((previous_dir / "model.json").read_text())),
            "records": pq.read_table(previous_dir / "records.parquet"),
            "entities": pd.read_parquet(previous_dir / "entities.parquet"),
            "pairs": pd.read_parquet(previous_dir / "pairs.parquet") if with_pairs else None,
            "golden": pd.read_parquet(previous_dir / "golden.parquet"),
            "quarantine": (pd.read_parquet(previous_dir / "quarantine.parquet")
                           if (previous_dir / "quarantine.parquet").exists() else None),
            "lineage": (pd.read_parquet(previous_dir / LINEAGE_FILE)
                        if (previous_dir / LINEAGE_FILE).exists() else None),
            "linked_one_to_one": run.get("clustering", {}).get("one_to_one", {}).get("linked_one_to_one", []),
            "date_formats": run.get("date_formats", {}), "phone_region": run.get("phone_region")}


def link_incremental(linker, inputs: list[Path], previous_dir: Path, out_dir: Path, fast: bool = False):
    previous_dir, out_dir = Path(previous_dir), Path(out_dir)
    if previous_dir.resolve() == out_dir.resolve():
        raise ValueError("--out must be a new folder: the earlier run stays as it was, so its customers can be "
                         "compared with the new ones")
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = linker.settings
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    linker._step("reading the earlier run")
    previous = read_previous(previous_dir, with_pairs=fast)
    model: FellegiSunterModel = previous["model"]
    forgotten = read_forgotten(previous_dir / FORGOTTEN_FILE) if (previous_dir / FORGOTTEN_FILE).exists() else None

    linker._step("reading and standardising the new batch")
    logged = read_record_log(previous_dir / RECORD_LOG_FILE)
    written = (WrittenRecords(RECORD_LOG_FILE, logged.entries, previous["phone_region"], previous["date_formats"])
               if logged.entries else None)
    if not inputs and written is None:
        raise FileNotFoundError(f"nothing to link: give the new batch's files, or serve {previous_dir} and write "
                                f"records to it (they are read from its {RECORD_LOG_FILE})")
    ingested = ingest(input_files(inputs, linker.config) if inputs else [], linker.config, forgotten, written)
    new_table = ingested.records_table
    new_keys = record_keys(pd.Series(new_table["source"].to_numpy(zero_copy_only=False)),
                           pd.Series(new_table["record_id"].to_numpy(zero_copy_only=False))).to_numpy(object)
    old_table = previous["records"]
    old_keys = record_keys(pd.Series(old_table["source"].to_numpy(zero_copy_only=False)),
                           pd.Series(old_table["record_id"].to_numpy(zero_copy_only=False))).to_numpy(object)
    # pandas' hash join: numpy's isin compares object arrays element by element (hours at 1M x 10k).
    updated = pd.Series(old_keys).isin(new_keys).to_numpy()
    old_table, old_keys = old_table.filter(pa.array(~updated)), old_keys[~updated]
    entities = previous["entities"]
    entity_of = customer_of_record(entities)
    # The customers the API gave records since (written ones, and earlier ones its merges
    # moved) are their earlier customers: ids it acknowledged are kept as the run's are.
    api_customer_of = pd.Series(logged.customer_of(), dtype=object)
    if len(api_customer_of):
        entity_of = pd.concat([entity_of[~entity_of.index.isin(api_customer_of.index)], api_customer_of])
    combined = pa.concat_tables([old_table, new_table], promote_options="default")
    records, encoded_columns = records_from_arrow(combined)
    keys = np.concatenate([old_keys, new_keys])
    n_old, n = len(old_keys), len(keys)
    new = np.arange(n) >= n_old

    linker._step("blocking (pairs with a new record)" if fast else "blocking")
    encoded = EncodedRecords(records, combined, encoded_columns)
    comparisons = linker.comparisons(encoded)
    check_model_fits(model, comparisons, "map the new batch's columns as the earlier run's")
    add_blocking_keys(encoded)
    blocked = block(encoded, default_rules(encoded), settings.link_type, settings.max_block_size,
                    new=new if fast else None)
    left, right = blocked.left, blocked.right
    linker._step("comparing and scoring")
    gamma = comparison_matrix(comparisons, encoded, left, right, settings.shared_value_limit)
    scores = score(model, gamma, encoded, comparisons, left, right)

    linker._step("clustering")
    previous_id = np.concatenate([entity_of.reindex(old_keys).to_numpy(object),
                                  api_customer_of.reindex(new_keys).to_numpy(object) if len(api_customer_of)
                                  else np.full(n - n_old, None, dtype=object)])
    previous_id[pd.isna(previous_id)] = None  # reindex fills NaN where a key has no earlier customer
    scorer = pair_scorer(model, comparisons, encoded, settings.shared_value_limit)
    rank = key_rank(keys)
    # The fast mode scores the new records' pairs alone, too few to judge the sources on: it
    # keeps the earlier run's judgement, and earlier records keep the partners they had.
    previous_codes = pd.factorize(pd.Series(previous_id, dtype=object), use_na_sentinel=True)[0] if fast else None
    match, one_to_one = match_edges_of_run(
        settings, encoded, left, right, scores.match_probability, rank,
        once_sources=previous["linked_one_to_one"] if fast else None, linked_before=previous_codes)
    if previous_codes is not None:  # the fast mode
        labels, cluster_report = _cluster_from_previous(n, left, right, scores, previous_codes, new, scorer, rank,
                                                        settings, match)
    else:
        labels, cluster_report = cluster(n, left, right, scores.match_weight, scores.match_probability,
                                         settings.match_threshold, settings.cannot_link_threshold, scorer,
                                         record_rank=rank, match=match)
    cluster_report["one_to_one"] = one_to_one
    linker._step("ids and lineage")
    new_pairs = linker.pairs_frame(records, comparisons, left, right, gamma, scores, rank)
    # Evidence of a merge: a match joining two earlier customers, or through a new record.
    joins = (match & (new[left] | new[right] | (previous_id[left] != previous_id[right])))
    evidence = pd.DataFrame({"key_l": keys[left[joins]], "key_r": keys[right[joins]],
                             "probability": scores.match_probability[joins]})
    ids, events = assign_ids(keys, labels, previous_id, evidence, at)

    linker._step("golden records and artifacts")
    entities_frame(records, ids, labels).to_parquet(out_dir / "entities.parquet", index=False)
    if fast:
        old_pairs = previous["pairs"]
        gone = set(new_keys) & set(entity_of.index)  # updated records: their old pairs are void
        if gone:
            touches = (record_keys(old_pairs["source_l"], old_pairs["record_id_l"]).isin(gone)
                       | record_keys(old_pairs["source_r"], old_pairs["record_id_r"]).isin(gone))
            old_pairs = old_pairs[~touches]
        new_pairs = pd.concat([old_pairs, new_pairs], ignore_index=True)
    new_pairs.to_parquet(out_dir / "pairs.parquet", index=False)

    source_priority = list(linker.config.sources) or sorted(records["source"].unique())
    api_events = logged.events()
    updated_golden(previous["golden"], records, ids, set(ids[new]) | touched_by(events) | touched_by(api_events)
                   | set(api_customer_of.to_numpy(object).tolist()),
                   source_priority).to_parquet(out_dir / "golden.parquet", index=False)
    pq.write_table(combined, out_dir / "records.parquet")
    quarantine = pd.concat([q for q in (previous["quarantine"], ingested.quarantine) if q is not None and len(q)]
                           or [ingested.quarantine], ignore_index=True)
    quarantine.to_parquet(out_dir / "quarantine.parquet", index=False)
    api_lineage = [{k: e[k] for k in LINEAGE_COLUMNS} for e in api_events]
    with_lineage(previous["lineage"], api_lineage + events).to_parquet(out_dir / LINEAGE_FILE, index=False)
    model.save(out_dir / "model.json")
    write_profile(ingested.profile, out_dir / "profile.json")
    linker.write_config(out_dir)
    if (previous_dir / FORGOTTEN_FILE).exists():
        shutil.copyfile(previous_dir / FORGOTTEN_FILE, out_dir / FORGOTTEN_FILE)
    linker._step("")

    old_ids_left = set(previous_id[:n_old]) - {None}
    joined = int(pd.Series(ids[new]).isin(old_ids_left).sum())
    result = ResolutionResult(
        out_dir=out_dir, records=int(new.sum()), entities=int(len(set(ids))), quarantined=len(ingested.quarantine),
        read=sum(s.read for s in ingested.stats.values()), candidate_pairs=len(left),
        reduction_ratio=blocked.reduction_ratio, stats=ingested.stats, blocking=[asdict(r) for r in blocked.reports],
        clustering=cluster_report, em={"iterations": 0, "converged": True, "lambda": model.lambda_, "trained": False},
        seconds=dict(linker.seconds),
        incremental={"previous": str(previous_dir), "previous_records": int(len(previous["entities"])),
                     "updated_records": int(updated.sum()), "total_records": n,
                     "new_records_joining_earlier_customers": joined,
                     "new_customers": int(len(set(ids[new]) - old_ids_left)),
                     "merges": sum(e["event"] == "merge" for e in events),
                     "splits": sum(e["event"] == "split" for e in events)},
        phone_region=ingested.phone_region, date_formats={**previous["date_formats"], **ingested.date_formats})
    (out_dir / "run.json").write_text(json.dumps(result.to_json(), indent=2, default=str))
    return result
