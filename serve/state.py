"""What the server answers from: a resolve run's golden records and record-to-customer map,
and where graph tables are given, risk, segments and customer embeddings; read once at
start-up and indexed by customer id, so a request is a dictionary lookup, not a scan."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from identigraph.resolution.erasure import Erasure, clear_golden_attributes
from identigraph.resolution.matching import MatchInputError, RecordMatcher

RISK_COLUMNS = ("risk_score", "risk_rank", "risk_band", "score_kind", "reason_codes", "risk_reasons")


class StateError(ValueError):
    """The served folders lack an artifact; the message names it and the command that writes it."""


def _plain(value: Any) -> Any:
    """A JSON-ready value: None for missing, lists for arrays, Python numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _read(path: Path, what: str) -> pd.DataFrame:
    if not path.exists():
        raise StateError(f"{path} is missing: {what}")
    return pd.read_parquet(path)


@dataclass
class ServedState:
    resolved_dir: Path
    tables_dir: Path | None
    golden: pd.DataFrame                      # one row per customer, default index
    golden_row: dict[str, int]                # customer id -> row of ``golden``
    records_of: dict[str, list[tuple[str, str]]]  # customer id -> its (source, record_id)
    risk: pd.DataFrame | None = None          # indexed by customer id
    segments: pd.DataFrame | None = None      # indexed by customer id
    embedding_ids: np.ndarray | None = None   # customer ids, in the rows of ``unit_vectors``
    unit_vectors: np.ndarray | None = None    # float32, each row of length 1 (cosine = dot product)
    embedding_row: dict[str, int] = field(default_factory=dict)
    matcher: RecordMatcher | None = None      # POST /v1/match: None where the run cannot be matched to
    seconds: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Written through the API since the run (serve.writes): customers whose golden record is
    # recomputed from their records when next read, those recomputed, and merged-away ids.
    stale_golden: set[str] = field(default_factory=set)
    golden_since: dict[str, dict[str, Any]] = field(default_factory=dict)
    merged_into: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, resolved_dir: Path, tables_dir: Path | None = None) -> ServedState:
        import time

        started = time.perf_counter()
        resolved_dir = Path(resolved_dir)
        golden = _read(resolved_dir / "golden.parquet", "pass the --out folder of `identigraph resolve`")
        entities = _read(resolved_dir / "entities.parquet", "pass the --out folder of `identigraph resolve`")
        golden_row = {str(k): i for i, k in enumerate(golden["entity_id"].to_numpy(object))}
        order = np.argsort(entities["entity_id"].to_numpy(object), kind="stable")
        ids = entities["entity_id"].to_numpy(object)[order]
        sources = entities["source"].to_numpy(object)[order]
        record_ids = entities["record_id"].astype(str).to_numpy(object)[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.empty(0, dtype=np.int64)
        ends = np.r_[starts[1:], len(ids)]
        records_of = {str(ids[s]): list(zip(sources[s:e].tolist(), record_ids[s:e].tolist()))
                      for s, e in zip(starts.tolist(), ends.tolist())}
        state = cls(resolved_dir, Path(tables_dir) if tables_dir else None, golden, golden_row, records_of)
        if (resolved_dir / "records.parquet").exists() and (resolved_dir / "model.json").exists():
            try:
                state.matcher = RecordMatcher.load(resolved_dir, entities)
            except MatchInputError:  # a pseudonymized run: served, but nothing to match against
                state.matcher = None
        if state.tables_dir is not None:
            state._load_tables(state.tables_dir)
        state.seconds = round(time.perf_counter() - started, 2)
        return state

    def _load_tables(self, tables_dir: Path) -> None:
        if not (tables_dir / "nodes").is_dir():
            raise StateError(f"{tables_dir} has no nodes/: pass the --out folder of `identigraph graph build`")
        risk_path = tables_dir / "risk.parquet"
        if risk_path.exists():
            risk = pd.read_parquet(risk_path)
            if "customer_id" in risk.columns:
                self.risk = risk[["customer_id", *[c for c in RISK_COLUMNS if c in risk.columns]]].set_index(
                    "customer_id")
        segments_path = tables_dir / "segments.parquet"
        if segments_path.exists():
            self.segments = pd.read_parquet(segments_path, columns=["customer_id", "segment_id", "segment"]
                                            ).set_index("customer_id")
        embeddings_path = tables_dir / "embeddings" / "embeddings.parquet"
        if embeddings_path.exists():
            table = pd.read_parquet(embeddings_path)
            customers = table[table["node_type"] == "customer"]
            vectors = np.asarray(np.stack(customers["embedding"].to_numpy()), dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            self.unit_vectors = vectors / np.maximum(norms, 1e-12)
            self.embedding_ids = customers["node_id"].astype(str).to_numpy(object)
            self.embedding_row = {k: i for i, k in enumerate(self.embedding_ids.tolist())}

    @property
    def customers(self) -> int:
        return len(self.records_of)

    def has(self, customer_id: str) -> bool:
        return customer_id in self.records_of

    def golden_record(self, customer_id: str) -> dict[str, Any]:
        if customer_id in self.stale_golden or (customer_id not in self.golden_row and
                                                customer_id not in self.golden_since):
            self.golden_since[customer_id] = self._golden_from_records(customer_id)
            self.stale_golden.discard(customer_id)
        if customer_id in self.golden_since:
            return self.golden_since[customer_id]
        row = self.golden.iloc[self.golden_row[customer_id]]
        return {column: _plain(value) for column, value in row.items()}

    def _golden_from_records(self, customer_id: str) -> dict[str, Any]:
        """The golden record of a customer writes changed, from its records' values now (an
        erased record's values left out; it still counts in record_count)."""
        from identigraph.resolution.golden import golden_records

        matcher = self.matcher
        assert matcher is not None  # only writes, which need the matcher, change customers
        rows: list[dict[str, Any]] = []
        for source, record_id in self.records_of[customer_id]:
            values = matcher.live_values(f"{source}:{record_id}")
            if values is not None:
                rows.append({"source": source, "record_id": record_id, **values})
        if not rows:  # every record erased
            return {**{column: None for column in self.golden.columns}, "entity_id": customer_id,
                    "record_count": len(self.records_of[customer_id])}
        frame = pd.DataFrame(rows).reindex(columns=["source", "record_id", *matcher.columns])
        priority = list(matcher.config.sources) or sorted(frame["source"].unique())
        golden = golden_records(frame, np.full(len(frame), customer_id, dtype=object), priority)
        record = {column: _plain(value) for column, value in golden.iloc[0].items()}
        record["record_count"] = len(self.records_of[customer_id])
        return record

    def move_record(self, source: str, record_id: str, old: str | None, new: str) -> None:
        """The record now belongs to ``new`` (``old``: its customer before, None for a new
        record); a customer left without records was merged into ``new``."""
        if old == new:
            return
        if old is not None and old in self.records_of:
            remaining = [r for r in self.records_of[old] if r != (source, record_id)]
            if remaining:
                self.records_of[old] = remaining
                self.stale_golden.add(old)
            else:
                del self.records_of[old]
                self.merged_into[old] = new
        self.records_of.setdefault(new, []).append((source, record_id))
        self.merged_into.pop(new, None)
        self.stale_golden.add(new)

    def risk_of(self, customer_id: str) -> dict[str, Any] | None:
        if self.risk is None or customer_id not in self.risk.index:
            return None
        return {column: _plain(value) for column, value in self.risk.loc[customer_id].items()}

    def segment_of(self, customer_id: str) -> dict[str, Any] | None:
        if self.segments is None or customer_id not in self.segments.index:
            return None
        return {column: _plain(value) for column, value in self.segments.loc[customer_id].items()}

    def similar(self, customer_id: str, k: int) -> list[tuple[str, float]] | None:
        """The ``k`` nearest customers by cosine of their embeddings; None without embeddings
        for this customer."""
        if self.unit_vectors is None or self.embedding_ids is None or customer_id not in self.embedding_row:
            return None
        row = self.embedding_row[customer_id]
        scores = self.unit_vectors @ self.unit_vectors[row]
        scores[row] = -np.inf
        k = min(k, len(scores) - 1)
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(str(self.embedding_ids[i]), float(scores[i])) for i in top]

    def forget(self, erasure: Erasure) -> None:
        """Applies an erasure already written to the artifacts to what is served."""
        with self.lock:
            clear_golden_attributes(self.golden, "entity_id", erasure.customer_id, set(erasure.record_keys),
                                    erasure.scope)
            if self.matcher is not None:
                self.matcher.forget(erasure.record_keys)
                customers = {self.matcher.customer_of(key) for key in erasure.record_keys}
                # Golden records shown from here on are recomputed without the erased values.
                self.stale_golden |= {c for c in customers if c is not None and c in self.records_of}
