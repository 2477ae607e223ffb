"""`POST /v1/match` on the real data sets (issue 20): does matching one record give the
customer the batch run gave it, on data nobody here wrote?

    python benchmarks/bench_match_real.py [--only FEBRL4 ...] [--sample 1000]

Each real set (``resolution.datasets``: FEBRL3, FEBRL4, RLdata10000, PatentsView inventors,
Fodor's-Zagat) is resolved with its linkage.toml, as `identigraph resolve` does. Then, leave
one out: up to ``--sample`` records (seeded), each sent as its source's raw row, its values
named by the semantic types its columns have (several columns of one type as a list), with
its own id, so it is not its own candidate (a text or category column as ``text__<column>``). The API agrees with the batch when it joins the
batch's customer of the record, or no one where the batch left the record alone. Matched
in-process with ``RecordMatcher.match_many`` in bursts of 32, the code `/v1/match` runs
(bench_match.py times it over HTTP). Results: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from bench_real import datasets  # noqa: E402

from identigraph.resolution.config import ROW_NUMBER, load_config  # noqa: E402
from identigraph.resolution.io import read_table  # noqa: E402
from identigraph.resolution.jobs import resolve_files  # noqa: E402
from identigraph.resolution.matching import MatchQuery, RecordMatcher  # noqa: E402

REAL_SETS = ["FEBRL3", "FEBRL4", "RLdata10000", "PatentsView", "Fodors-Zagat"]


def queries_of(files: list[Path], config_path: Path) -> dict[str, MatchQuery]:
    """record key -> the record as a match query: its raw values by semantic type."""
    config = load_config(config_path)
    out = {}
    for path in files:
        source = config.for_source(path.stem)
        frame = read_table(path).astype(object)
        frame = frame.where(frame.notna(), None)
        for number, row in enumerate(frame.to_dict("records"), start=1):
            record_id = str(number) if source.id_column == ROW_NUMBER else str(row[source.id_column]).strip()
            fields: dict[str, list] = {}
            for column, kind in source.fields.items():
                if kind != "ignore":
                    value = row.get(column)
                    # A per-column type (text, category) is named by its column, as the run names it.
                    name = f"{kind}__{column}" if kind in ("text", "category") else kind
                    fields.setdefault(name, []).append(None if value in (None, "") else str(value))
            typed = {kind: values if len(values) > 1 else values[0] for kind, values in fields.items()
                     if any(v is not None for v in values)}
            out[f"{path.stem}:{record_id}"] = MatchQuery(path.stem, typed, record_id)
    return out


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=REAL_SETS)
    parser.add_argument("--sample", type=int, default=1000)
    args = parser.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for data in datasets(work, args.only, 0):
            out = work / f"{data.name}_resolved"
            resolve_files(data.files, out, data.config)
            entities = pd.read_parquet(out / "entities.parquet")
            keys = (entities["source"] + ":" + entities["record_id"].astype(str)).tolist()
            entity_of = dict(zip(keys, entities["entity_id"]))
            size_of = entities.groupby("entity_id").size().to_dict()
            queries = queries_of(data.files, out / "linkage.toml")
            chosen = sorted(k for k in keys if k in queries)
            random.Random(7).shuffle(chosen)
            chosen = chosen[:args.sample]
            matcher = RecordMatcher.load(out)
            started = time.perf_counter()
            results = []
            for i in range(0, len(chosen), 32):
                results += matcher.match_many([queries[k] for k in chosen[i:i + 32]])
            seconds = time.perf_counter() - started
            agree, kinds = 0, {"joins another customer": 0, "joins none, the batch joined": 0,
                               "joins one, the batch kept it alone": 0}
            for key, result in zip(chosen, results):
                own = entity_of[key]
                expected = own if size_of[own] > 1 else None
                if result.would_join == expected:
                    agree += 1
                elif result.would_join is None:
                    kinds["joins none, the batch joined"] += 1
                elif expected is None:
                    kinds["joins one, the batch kept it alone"] += 1
                else:
                    kinds["joins another customer"] += 1
            report[data.name] = {"records": len(entities), "sampled": len(chosen), "agree": agree,
                                 "agreement": round(agree / max(len(chosen), 1), 4), **kinds,
                                 "ms_per_record_in_bursts_of_32": round(seconds / max(len(chosen), 1) * 1000, 2)}
            print(json.dumps({data.name: report[data.name]}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
