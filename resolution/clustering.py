"""Scored pairs to entities, without the over-merging of plain connected components.

1. Connected components of the pairs at or above ``match_threshold``.
2. In components of 3 to ``complete_up_to`` records, pairs that blocking never produced
   are scored now, so every pair inside such a component has a verdict.
3. A pair scored below ``cannot_link_threshold`` is a cannot-link. A component with no
   cannot-link inside is accepted as it is (the common case). Otherwise its match edges
   are replayed strongest first, and two clusters merge when no cannot-link joins them, or
   when the edge's weight outweighs all the negative evidence between them (the summed
   log-odds of their pairs scored below even odds) and none of those pairs is at the
   distinct-person weight or below: a chain of links through a shared phone cannot join two
   clearly different people, while one badly scored pair (typos and swapped names in a
   record whose identifier and address agree) no longer vetoes a strong match on its own.
   Measured on every real set and at 1M records (docs/benchmarks.md): it never lost F1, and
   kept precision at 1M above 0.99.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import poisson

from identigraph.resolution.model import DISTINCT_PERSON_WEIGHT


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _members_by_label(labels: np.ndarray, wanted: np.ndarray) -> list[np.ndarray]:
    """Record indices of each wanted label, one array per label."""
    records = np.flatnonzero(np.isin(labels, wanted))
    records = records[np.argsort(labels[records], kind="stable")]
    return np.split(records, np.flatnonzero(np.diff(labels[records])) + 1) if len(records) else []


def _within_component_pairs(labels: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every record pair inside each wanted component, left < right. Components of one size
    share one triangle of index pairs, so the work is per size, not per component."""
    records = np.flatnonzero(np.isin(labels, wanted))
    records = records[np.lexsort((records, labels[records]))]
    starts = np.flatnonzero(np.r_[True, labels[records][1:] != labels[records][:-1]])
    sizes = np.diff(np.r_[starts, len(records)])
    lefts, rights = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    for size in np.unique(sizes).tolist():
        members = records[starts[sizes == size][:, None] + np.arange(size)]  # one row per component
        i, j = np.triu_indices(size, k=1)
        lefts.append(members[:, i].ravel())
        rights.append(members[:, j].ravel())
    return np.concatenate(lefts), np.concatenate(rights)


def _is_known_pair(keys: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``np.isin(keys, known)`` by binary search: ``known`` (millions of candidate pair keys)
    comes sorted from blocking, and isin would sort it again."""
    if len(known) > 1 and not bool((known[1:] >= known[:-1]).all()):
        known = np.sort(known)
    position = np.searchsorted(known, keys).clip(max=max(len(known) - 1, 0))
    return (known[position] == keys) if len(known) else np.zeros(len(keys), dtype=bool)


@dataclass
class _Evidence:
    """The scored pairs between two clusters: their summed log-odds (match weights), the
    lowest, the sum of those below even odds, and how many are above and below."""

    total: float = 0.0
    lowest: float = 0.0
    against: float = 0.0
    agreeing: int = 0
    disagreeing: int = 0

    def add(self, other: _Evidence) -> None:
        self.lowest = min(self.lowest, other.lowest) if self.agreeing + self.disagreeing else other.lowest
        self.total += other.total
        self.against += other.against
        self.agreeing += other.agreeing
        self.disagreeing += other.disagreeing

    @classmethod
    def of_pair(cls, log_odds: float) -> _Evidence:
        return cls(log_odds, log_odds, min(log_odds, 0.0), int(log_odds >= 0), int(log_odds < 0))


def _log_odds(probability: np.ndarray) -> np.ndarray:
    p = np.clip(probability, 1e-12, 1 - 1e-12)
    return np.log2(p / (1.0 - p))


def _evidence_between_records(labels: np.ndarray, conflicted: np.ndarray,
                              scored: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[int, dict[int, _Evidence]]:
    """Per record of the conflicted components, the evidence of each scored pair
    (``scored``: left, right, probability arrays) inside its component, both ways (one
    object seen from both ends)."""
    in_conflict = np.zeros(int(labels.max()) + 1, dtype=bool)
    in_conflict[conflicted] = True
    evidence: dict[int, dict[int, _Evidence]] = defaultdict(dict)
    for left, right, probability in scored:
        inside = np.flatnonzero(in_conflict[labels[left]] & (labels[left] == labels[right]) & (left != right))
        for a, b, w in zip(left[inside].tolist(), right[inside].tolist(), _log_odds(probability[inside]).tolist()):
            if b in evidence[a]:
                evidence[a][b].add(_Evidence.of_pair(w))
            else:
                evidence[a][b] = evidence[b][a] = _Evidence.of_pair(w)
    return evidence


def _most_pairs_agree(agreeing: int, disagreeing: int, z: float = 1.96) -> bool:
    """More than half of the pairs agree, beyond chance: the Wilson score interval's lower
    bound (95%) of the agreeing share is above one half. Three pairs of which two agree say
    little; 170 of 220 say a lot."""
    n = agreeing + disagreeing
    if n == 0:
        return False
    share = agreeing / n
    lower = (share + z * z / (2 * n) - z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    return bool(lower > 0.5)


def _may_merge(evidence: _Evidence | None, edge_weight: float, cannot_log_odds: float) -> bool:
    """Two clusters joined by a match edge merge unless a cannot-link lies between them
    and (a) a pair between them is a distinct person, or (b) the edge does not outweigh
    the negative evidence between them while the pairs between them do not, for the most
    part, agree."""
    if evidence is None or evidence.lowest >= cannot_log_odds:
        return True
    # (The tolerance: weights come back from probabilities with rounding.)
    if evidence.lowest <= DISTINCT_PERSON_WEIGHT + 1e-6:
        return False
    if edge_weight + evidence.against >= 0:
        return True
    return evidence.total >= 0 and _most_pairs_agree(evidence.agreeing, evidence.disagreeing)


def clusters_may_merge(pair_probabilities: np.ndarray, edge_weight: float, cannot_link_threshold: float) -> bool:
    """The guard's verdict (``_may_merge``) on two clusters joined by a match edge of
    ``edge_weight``, given the probabilities of the pairs between them: what a record
    written through the API that matches two customers is checked against before they merge."""
    evidence: _Evidence | None = None
    for weight in _log_odds(np.asarray(pair_probabilities, dtype=float)).tolist():
        if evidence is None:
            evidence = _Evidence.of_pair(weight)
        else:
            evidence.add(_Evidence.of_pair(weight))
    return _may_merge(evidence, edge_weight, float(_log_odds(np.array([cannot_link_threshold]))[0]))


def _strongest_first(edges: np.ndarray, strength: np.ndarray, left: np.ndarray, right: np.ndarray,
                     record_rank: np.ndarray | None) -> np.ndarray:
    """``edges`` (pair indices) strongest first; equal strengths in the order of their ends'
    ``record_rank`` (so the records' order does not matter), else in pair order."""
    if record_rank is None:
        return edges[np.argsort(-strength[edges], kind="stable")]
    ends = np.sort(np.stack([record_rank[left[edges]], record_rank[right[edges]]]), axis=0)
    return edges[np.lexsort((ends[1], ends[0], -strength[edges]))]


def _root(parent: dict[int, int], x: int) -> int:
    """Union-find: the root of ``x`` in ``parent`` (absent: its own root), paths compressed."""
    root = x
    while parent.get(root, root) != root:
        root = parent[root]
    while parent.get(x, x) != root:
        parent[x], x = root, parent[x]
    return root


# How sure the duplicates in a source must be before it counts as holding entities more
# than once: more records with a second one than the matches' own doubt explains, at this
# one-sided significance (Poisson).
DUPLICATES_SIGNIFICANCE = 0.05


def sources_holding_entities_once(source: np.ndarray, left: np.ndarray, right: np.ndarray,
                                  probability: np.ndarray, match_threshold: float) -> tuple[np.ndarray, dict]:
    """Per source code (``source``: one code per record, 0..k-1), whether the source holds
    each entity at most once, judged from the pairs at or above ``match_threshold``; and per
    source the counts behind it.

    A record of source t has a second record of its entity in t when it matches another
    record of t, or when one record of another source matches it and another record of t.
    Some such records come from false matches: their expected number is the summed doubt
    (1 - probability) of the matches that touch t. The source holds each entity once unless
    it has significantly more (``DUPLICATES_SIGNIFICANCE``). A guide that lists each
    restaurant once, or a snapshot of a voter file, shows none beyond its doubt; a web
    shop's customer table with its duplicate accounts shows them by the hundred. Data of one
    source has nothing to be linked one-to-one with."""
    k = int(source.max(initial=-1)) + 1
    once = np.zeros(k, dtype=bool)
    if k < 2:
        return once, {}
    match = probability >= match_threshold
    a, b = left[match].astype(np.int64), right[match].astype(np.int64)
    sa, sb = source[a], source[b]
    within = sa == sb
    twice = [a[within], b[within]]
    # A record of another source that matches two or more records of t: key (outside
    # record, t), member the record of t.
    cross = ~within
    outside_key = np.concatenate([a[cross] * k + sb[cross], b[cross] * k + sa[cross]])
    member = np.concatenate([b[cross], a[cross]])
    # (Hashing and masks, not np.unique: it sorts millions of pairs at 1M records.)
    inverse, keys = pd.factorize(outside_key)
    per_key = np.bincount(inverse, minlength=len(keys))
    twice.append(member[per_key[inverse] >= 2])

    def records_per_source(*parts: np.ndarray) -> np.ndarray:
        seen = np.zeros(len(source), dtype=bool)
        for part in parts:
            seen[part] = True
        return np.bincount(source[seen], minlength=k)

    matched = records_per_source(a, b)
    second = records_per_source(*twice)
    # The signs of a second record, counted as events: a match inside t, and each record of
    # t beyond the first that one outside record matches. A false match makes one event at
    # most; the matches' summed doubt (1 - probability) is how many false ones to expect.
    events = np.bincount(sa[within], minlength=k) + np.bincount(keys % k, weights=per_key - 1, minlength=k)
    doubt = 1.0 - probability[match]
    expected = np.bincount(sa, weights=doubt, minlength=k) + np.bincount(sb, weights=doubt * cross, minlength=k)
    return judge_sources_once(matched, second, events, expected)


def judge_sources_once(matched: np.ndarray, second: np.ndarray, events: np.ndarray, expected: np.ndarray
                       ) -> tuple[np.ndarray, dict]:
    """``sources_holding_entities_once`` from its counts per source code (records matched,
    records with a second record of their entity in the source, second-record events, and
    the events the matches' doubt explains), however they were counted (the Spark engine
    counts them with aggregations)."""
    significant = poisson.sf(events - 1, expected) < DUPLICATES_SIGNIFICANCE  # P(X >= events)
    once = (matched > 0) & ~significant
    return once, {"matched": matched.tolist(), "with_a_second_record": second.tolist(),
                  "second_record_events": events.astype(int).tolist(),
                  "expected_from_false_matches": [round(float(x), 2) for x in expected]}


def one_to_one_sources(one_to_one: bool | str, source: np.ndarray, left: np.ndarray, right: np.ndarray,
                       probability: np.ndarray, match_threshold: float) -> tuple[np.ndarray, dict]:
    """Per source code, whether its records link one-to-one (``[model] one_to_one``: true,
    false or "auto", judged by ``sources_holding_entities_once``), and the report of it."""
    k = int(source.max(initial=-1)) + 1
    if one_to_one == "auto":
        once, report = sources_holding_entities_once(source, left, right, probability, match_threshold)
    else:
        once, report = np.full(k, bool(one_to_one) and k >= 2), {}
    return once, {"one_to_one": one_to_one, **report}


def match_edges(left: np.ndarray, right: np.ndarray, probability: np.ndarray, match_threshold: float,
                source: np.ndarray | None = None, once: np.ndarray | None = None,
                one_to_one_threshold: float = 0.5, record_rank: np.ndarray | None = None,
                taken: np.ndarray | None = None) -> np.ndarray:
    """Which scored pairs are match edges. Pairs at or above ``match_threshold``, except
    where both records come from sources that hold each entity once (``once``, per code of
    ``source``): two records of one such source are never a match, and between two such
    sources each record links to at most one record of the other, its best, at
    ``one_to_one_threshold`` or above (greedy one-to-one assignment, strongest pair first,
    ties by the ends' ``record_rank``). A partner below ``match_threshold`` is taken only
    where no scored pair between the two clusters it joins is below even odds: the best
    partner left when the true one is missing ("the steakhouse" for "Binion's coffee shop"
    at one address) is no match to the others of its cluster either. ``taken``: keys
    ``record * k + source`` of records that have their partner in that source already (an
    incremental run's earlier links)."""
    match = probability >= match_threshold
    if source is None or once is None or not once.any():
        return match
    both = once[source[left]] & once[source[right]]
    match &= ~both
    candidates = np.flatnonzero(both & (source[left] != source[right]) & (probability >= one_to_one_threshold))
    if len(candidates) == 0:
        return match
    n = int(max(left.max(), right.max())) + 1
    firm = np.r_[np.flatnonzero(match), candidates[probability[candidates] >= match_threshold]]
    cluster_of = components(n, left[firm], right[firm])
    doubtful = np.flatnonzero(probability < 0.5)
    # Pairs below even odds between two clusters, as pairs of cluster labels (kept where a
    # tentative partner touches one of them), merged as tentative partners join clusters.
    touched = np.zeros(int(cluster_of.max()) + 1, dtype=bool)
    touched[cluster_of[left[candidates]]] = touched[cluster_of[right[candidates]]] = True
    a, b = cluster_of[left[doubtful]], cluster_of[right[doubtful]]
    keep = (a != b) & (touched[a] | touched[b])
    against: dict[int, set[int]] = defaultdict(set)
    for x, y in zip(a[keep].tolist(), b[keep].tolist()):
        against[x].add(y)
        against[y].add(x)
    parent: dict[int, int] = {}
    order = _strongest_first(candidates, probability, left, right, record_rank)
    k = int(source.max()) + 1
    # A record's partner in one other source: key record * k + that source.
    left_key = left[order].astype(np.int64) * k + source[right[order]]
    right_key = right[order].astype(np.int64) * k + source[left[order]]
    partnered: set[int] = set() if taken is None else set(taken.tolist())
    for e, x, y in zip(order.tolist(), left_key.tolist(), right_key.tolist()):
        if x in partnered or y in partnered:
            continue
        one, other = _root(parent, int(cluster_of[left[e]])), _root(parent, int(cluster_of[right[e]]))
        if one != other:
            if probability[e] < match_threshold and any(_root(parent, c) == other for c in against[one]):
                continue
            small, large = (one, other) if len(against[one]) <= len(against[other]) else (other, one)
            parent[small] = large
            against[large] |= against.pop(small)
        partnered.add(x)
        partnered.add(y)
        match[e] = True
    return match


def match_edges_of_run(settings, encoded, left: np.ndarray, right: np.ndarray, probability: np.ndarray,
                       rank: np.ndarray | None = None, once_sources: list[str] | None = None,
                       linked_before: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """A run's match edges (``match_edges``) under its ``[model]`` settings
    (``one_to_one``, ``match_threshold``, ``one_to_one_threshold``), the sources judged on
    ``encoded``'s records unless ``once_sources`` names them; and the report of which sources
    link one-to-one. ``linked_before``: an entity label per record where earlier links hold
    (-1 where none): a record whose entity has a record of a one-to-one source already
    takes no other partner there."""
    source, names = encoded.source_codes.astype(np.int64), encoded.sources
    if once_sources is None:
        once, report = one_to_one_sources(settings.one_to_one, source, left, right, probability,
                                          settings.match_threshold)
    else:
        once, report = np.isin(np.asarray(names, dtype=object), once_sources), {"one_to_one": "as the earlier run"}
    taken = None
    if linked_before is not None and once.any():
        k = len(names)
        held = np.flatnonzero(linked_before >= 0)
        members = pd.DataFrame({"record": held, "entity": linked_before[held], "source": source[held]})
        sources_of = members[["entity", "source"]].drop_duplicates()
        together = members.merge(sources_of, on="entity", suffixes=("", "_other"))
        together = together[together["source"] != together["source_other"]]
        taken = together["record"].to_numpy(np.int64) * k + together["source_other"].to_numpy(np.int64)
    match = match_edges(left, right, probability, settings.match_threshold, source, once,
                        settings.one_to_one_threshold, rank, taken)
    return match, {**report, "sources": [str(name) for name in names],
                   "linked_one_to_one": [str(name) for name, one in zip(names, once.tolist()) if one]}


def cluster(n: int, left: np.ndarray, right: np.ndarray, weight: np.ndarray, probability: np.ndarray,
            match_threshold: float, cannot_link_threshold: float,
            score_pairs: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
            complete_up_to: int = 30, focus: np.ndarray | None = None,
            record_rank: np.ndarray | None = None, match: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Cluster label per record and a report of what the guard did.

    ``match``: which pairs are match edges (``match_edges``); by default those at or above
    ``match_threshold``.

    ``score_pairs(left, right) -> probability`` scores pairs blocking did not produce.
    ``focus`` (a mask of records): only components holding one of them are completed, as
    an incremental run needs (the others were settled by the run before).
    ``record_rank``: a rank per record that does not depend on the records' order (the rank
    of ``source:record_id``); the guard replays equal weights in the order of their ends'
    ranks, so the same records given in another order give the same partition (an
    incremental run and a full rerun list them differently). Without it, the pair order.
    """
    if match is None:
        match = probability >= match_threshold
    labels = components(n, left[match], right[match])
    sizes = np.bincount(labels)
    report = {"components": int(len(sizes)), "pairs_scored_for_completion": 0, "components_split": 0,
              "records_moved": 0}

    negative_left = left[probability < cannot_link_threshold]
    negative_right = right[probability < cannot_link_threshold]
    extra = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0))
    if score_pairs is not None:
        small = np.flatnonzero((sizes >= 3) & (sizes <= complete_up_to))
        if focus is not None:
            small = np.intersect1d(small, labels[focus])
        if len(small):
            all_left, all_right = _within_component_pairs(labels, small)
            unknown = ~_is_known_pair(all_left * n + all_right, left * n + right)
            extra_left, extra_right = all_left[unknown], all_right[unknown]
            report["pairs_scored_for_completion"] = int(len(extra_left))
            if len(extra_left):
                extra_probability = score_pairs(extra_left, extra_right)
                low = extra_probability < cannot_link_threshold
                negative_left = np.concatenate([negative_left, extra_left[low]])
                negative_right = np.concatenate([negative_right, extra_right[low]])
                extra = (extra_left, extra_right, extra_probability)

    inside = labels[negative_left] == labels[negative_right]
    conflicted = np.unique(labels[negative_left[inside]])
    if len(conflicted) == 0:
        return labels, report
    evidence = _evidence_between_records(labels, conflicted, [(left, right, probability), extra])
    cannot_log_odds = float(_log_odds(np.array([cannot_link_threshold]))[0])
    edge_in = match & np.isin(labels[left], conflicted)
    edges = np.flatnonzero(edge_in)
    edge_order = _strongest_first(edges, weight, left, right, record_rank)
    parent: dict[int, int] = {}
    size: dict[int, int] = {}

    def find(x: int) -> int:
        return _root(parent, x)

    for e in edge_order.tolist():
        a, b = find(int(left[e])), find(int(right[e]))
        if a == b:
            continue
        small_root, large_root = (a, b) if size.get(a, 1) <= size.get(b, 1) else (b, a)
        if not _may_merge(evidence[small_root].get(large_root), float(weight[e]), cannot_log_odds):
            continue
        parent[small_root] = large_root
        size[large_root] = size.get(large_root, 1) + size.pop(small_root, 1)
        # The evidence between the merged cluster and each other cluster is the sum of both.
        large_evidence = evidence[large_root]
        large_evidence.pop(small_root, None)
        for other, between in evidence.pop(small_root, {}).items():
            if other == large_root:
                continue
            del evidence[other][small_root]
            if other in large_evidence:
                large_evidence[other].add(between)
            else:
                large_evidence[other] = evidence[other][large_root] = between

    new_labels = labels.copy()
    next_label = int(labels.max()) + 1
    for records in _members_by_label(labels, conflicted):
        roots = np.array([find(int(r)) for r in records])
        distinct_roots = np.unique(roots)
        if len(distinct_roots) > 1:
            report["components_split"] += 1
            largest = max(distinct_roots, key=lambda r: (roots == r).sum())
            for root in distinct_roots:
                if root == largest:
                    continue
                moved = records[roots == root]
                new_labels[moved] = next_label
                next_label += 1
                report["records_moved"] += int(len(moved))
    return new_labels, report
