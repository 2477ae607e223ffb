"""``POST /v1/records``: a record added or updated is linked with the run's model, gets its
customer under the incremental id rules, and is on disk before it is acknowledged.

Linking one record: it is matched against the run's records and those written since; it
joins every customer it matches at or above the match threshold. One customer: it takes
that id. Several: they merge, and the id of the one with most records survives (a merge
event). None: a new customer, ``E`` + a hash of its key, as a batch run names it. An
update that no longer matches its customer's other records leaves them (a split event);
they keep the id when they are the larger part. These are ``resolution.incremental``'s rules
(``assign_ids``), applied to the customers the record touches. Before customers merge, the
pairs between their records are scored and the batch's clustering guard may refuse the
merge (a chain through a shared phone does not join two clearly different people): the
record then joins the customers the guard allows.

What a batch run would do beyond this: re-cluster with the new record's term frequencies,
and split an earlier customer whose records the update no longer holds together (here the
rest of the customer stays one). ``identigraph resolve --previous`` does both, reading the
log as a batch of records whose customers are the ids given here.

Writes are linked one at a time on one thread, in the order they arrive, so concurrent
writers see each other's records; a burst is matched in one call and a record whose
candidates an earlier write of the burst changed is matched again. The batch's log lines
are fsynced, then acknowledged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from identigraph.resolution.clustering import clusters_may_merge
from identigraph.resolution.erasure import FORGOTTEN_FILE, read_forgotten
from identigraph.resolution.incremental import assign_ids, fresh_customer_id
from identigraph.resolution.matching import CandidateCustomer, MatchQuery, MatchResult, RecordMatcher
from identigraph.resolution.record_log import RECORD_LOG_FILE, RecordLog
from identigraph.serve.state import ServedState


class WriteRefused(ValueError):
    """The record may not be written (an erased person's record); the message says why."""


@dataclass
class Written:
    customer_id: str
    created: bool  # a record the state did not hold (else an update)
    new_customer: bool
    match_probability: float | None  # the best candidate's, when it joined one
    events: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0


def record_key(source: str, record_id: str) -> str:
    return f"{source}:{record_id}"


class RecordWriter:
    def __init__(self, state: ServedState):
        if state.matcher is None:
            raise ValueError("writing records needs matching: the served folder lacks records.parquet or model.json")
        self.state = state
        self.matcher: RecordMatcher = state.matcher
        forgotten_path = state.resolved_dir / FORGOTTEN_FILE
        self.forgotten = set(read_forgotten(forgotten_path)) if forgotten_path.exists() else set()
        self.log = RecordLog(state.resolved_dir / RECORD_LOG_FILE)
        self.ever_used: set[str] = set(state.golden_row)  # ids a new customer may never take
        self.matcher.index_record_keys()  # at start-up, not in the first write
        self.seq = 0
        self.failed: str | None = None  # why the log could not be written: writes stop until a restart
        self.replayed = self._replay(self.log.read.entries)

    # Start-up ----------------------------------------------------------------------------
    def _replay(self, entries: list[dict[str, Any]], chunk: int = 512) -> int:
        """The logged writes applied as they were acknowledged (not linked again)."""
        for start in range(0, len(entries), chunk):
            part = entries[start:start + chunk]
            live = [e for e in part if not e.get("erased")]
            values = dict(zip((id(e) for e in live), self.matcher.values_of(
                [MatchQuery(e["source"], e["fields"], e["record_id"]) for e in live])))
            for entry in part:
                self._apply(entry, values.get(id(entry)))
        if entries:
            self.seq = int(entries[-1]["seq"])
        if self.forgotten:
            self.matcher.forget(sorted(self.forgotten))
        return len(entries)

    # Writing -------------------------------------------------------------------------------
    def write_many(self, queries: list[MatchQuery]) -> list[Written | WriteRefused]:
        """Links and logs each record in order; returns once the log is on disk."""
        if self.failed is not None:
            raise OSError(f"writes are stopped: the record log could not be written ({self.failed}); "
                          "restart the server, which replays what was acknowledged")
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        outcomes: list[Written | WriteRefused] = []
        entries: list[dict[str, Any]] = []
        with self.state.lock:
            results = self.matcher.match_many(queries)  # against the state before this burst
            blocks_written: set[tuple] = set()
            customers_changed: set[str] = set()
            keys_written: set[str] = set()
            for query, result in zip(queries, results):
                key = record_key(query.source, str(query.record_id))
                if key in self.forgotten:
                    outcomes.append(WriteRefused(f"record {key} was erased (forgotten.jsonl): it is not "
                                                 "linked again"))
                    continue
                blocks = self.matcher.block_keys(result.values)
                if (key in keys_written or blocks & blocks_written
                        or any(c.customer_id in customers_changed for c in result.candidates)):
                    result = self.matcher.match_many([query])[0]  # an earlier write of the burst is a candidate
                entry = self._decide(query, result, at)
                self._apply(entry, result.values)
                entries.append(entry)
                keys_written.add(key)
                blocks_written |= blocks
                customers_changed |= {entry["customer_id"], *entry["reassigned"].values(),
                                      *(old for e in entry["events"] for old in e["old_ids"])}
                outcomes.append(Written(entry["customer_id"], entry["created"], entry["new_customer"],
                                        entry["match_probability"], entry["events"], entry["seq"]))
            if entries:
                try:
                    self.log.append(entries)
                except OSError as error:
                    # Served state now holds writes the disk may not: refuse more until a restart.
                    self.failed = str(error)
                    raise
        return outcomes

    def _decide(self, query: MatchQuery, result: MatchResult, at: str) -> dict[str, Any]:
        """The log entry of one write: its customer, the records it moved, the events."""
        source, record_id = query.source, str(query.record_id)
        key = record_key(source, record_id)
        old = self.matcher.customer_of(key)
        # The customer /v1/match says it joins (its strongest match edge, one-to-one links
        # included), then any other it matches at the threshold: those merge, as far as the
        # clustering guard allows.
        joined = [] if result.would_join is None else (
            [c for c in result.candidates if c.customer_id == result.would_join]
            + [c for c in result.candidates
               if c.match_probability >= result.match_threshold and c.customer_id != result.would_join])
        if len(joined) > 1:
            joined = self._guarded(key, source, result, joined)
        above = [c.customer_id for c in joined]
        reassigned: dict[str, str] = {}
        events: list[dict[str, Any]] = []
        if not above and (old is None or self.state.records_of.get(old) == [(source, record_id)]):
            customer = old if old is not None else fresh_customer_id(key, self.ever_used)
        elif len(above) == 1 and old in (None, above[0]):
            customer = above[0]
        else:  # a merge, or an update leaving its customer: the batch run's id rules
            customer, reassigned, events = self._ids_by_batch_rules(key, old, above, joined, at)
        self.seq += 1
        return {"seq": self.seq, "at": at, "source": source, "record_id": record_id, "fields": query.fields,
                "customer_id": customer, "reassigned": reassigned, "events": events,
                "created": old is None, "new_customer": customer not in self.state.records_of,
                "match_probability": round(joined[0].match_probability, 6) if joined else None}

    def _guarded(self, key: str, source: str, result: MatchResult,
                 joined: list[CandidateCustomer]) -> list[CandidateCustomer]:
        """The customers the record may join: the one matching chose, then each other,
        strongest first, unless the pairs between it and what has joined so far
        hold a cannot-link the match does not outweigh (``clustering.clusters_may_merge``,
        the batch's guard on a merge)."""
        threshold = self.matcher.settings.cannot_link_threshold
        first, rest = joined[0], joined[1:]
        members = [key, *(record_key(s, r) for s, r in self.state.records_of.get(first.customer_id, []))]
        allowed = [first]
        for candidate in rest:
            theirs = [record_key(s, r) for s, r in self.state.records_of.get(candidate.customer_id, [])]
            between = self.matcher.probabilities_between(members, theirs, {key: (source, result.values)})
            if clusters_may_merge(between, candidate.match_weight, threshold):
                allowed.append(candidate)
                members += theirs
        return allowed

    def _ids_by_batch_rules(self, key: str, old: str | None, above: list[str], joined: list,
                            at: str) -> tuple[str, dict[str, str], list[dict[str, Any]]]:
        involved = [*above, *([old] if old is not None and old not in above else [])]
        keys: list[str] = []
        labels: list[int] = []
        previous: list[str | None] = []
        for customer in involved:
            for source, record_id in self.state.records_of.get(customer, []):
                member = record_key(source, record_id)
                if member != key:
                    keys.append(member)
                    labels.append(0 if customer in above else 1)
                    previous.append(customer)
        keys.append(key)
        labels.append(0)
        previous.append(old)
        evidence = pd.DataFrame({"key_l": [key] * len(joined),
                                 "key_r": [record_key(c.best_record.source, c.best_record.record_id) for c in joined],
                                 "probability": [c.match_probability for c in joined]})
        ids, events = assign_ids(np.array(keys, dtype=object), np.array(labels), np.array(previous, dtype=object),
                                 evidence, at, also_taken=self.ever_used)
        reassigned = {member: str(new) for member, new, was in zip(keys[:-1], ids[:-1], previous[:-1]) if new != was}
        return str(ids[-1]), reassigned, events

    def _apply(self, entry: dict[str, Any], values: dict[str, object] | None) -> None:
        """A decided (or replayed) write applied to what is served."""
        source, record_id, customer = entry["source"], str(entry["record_id"]), entry["customer_id"]
        key = record_key(source, record_id)
        moved = {member: (self.matcher.customer_of(member), new) for member, new in entry["reassigned"].items()}
        for member, (was, new) in moved.items():
            member_source, member_id = member.split(":", 1)
            self.state.move_record(member_source, member_id, was, new)
        self.matcher.reassign(entry["reassigned"])
        self.state.move_record(source, record_id, self.matcher.customer_of(key), customer)
        if values is not None:
            self.matcher.add(source, record_id, values, customer)
        else:  # erased since it was written: it belongs to its customer, its values are gone
            self.matcher.add(source, record_id, {}, customer)
            self.matcher.forget([key])
        self.ever_used.add(customer)
        self.seq = max(self.seq, int(entry["seq"]))

    # Erasure -------------------------------------------------------------------------------
    def forget(self, keys: list[str], request_id: str) -> bool:
        """Erased records are never written again, and their values leave the log; True
        where it held any."""
        self.forgotten |= set(keys)
        return self.log.erase(set(keys), request_id)

    def close(self) -> None:
        self.log.close()

