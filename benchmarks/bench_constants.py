"""Do the constants that stay hold on every real set? Pairwise F1 (configured run) of each real
data set with each constant moved away from its value, the others at theirs.

    python benchmarks/bench_constants.py [--only FEBRL3 RLdata500 ...] [--settings LABEL ...] [--inferred]

Constants: the m prior (``model.M_PRIOR_PAIRS``), the session u prior
(``model.U_PRIOR_PAIRS``), the sorted-neighbourhood window (``blocking.REFINING_WINDOW``), the
match threshold (``[model] match_threshold``) and the clustering guard's cannot-link threshold
(``[model] cannot_link_threshold``), the one-to-one partner threshold (``[model]
one_to_one_threshold``) and the significance at which a source is judged to hold entities
more than once (``clustering.DUPLICATES_SIGNIFICANCE``, which decides with no config).
Results: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from identigraph.resolution import blocking, clustering, datasets, model  # noqa: E402
from identigraph.resolution.config import load_config  # noqa: E402
from identigraph.resolution.evaluation import evaluate_clusters  # noqa: E402
from identigraph.resolution.infer import infer_config  # noqa: E402
from identigraph.resolution.ingest import input_files  # noqa: E402
from identigraph.resolution.linker import Linker  # noqa: E402

SETTINGS = [
    ("as shipped", {}),
    ("m prior 5", {"M_PRIOR_PAIRS": 5.0}), ("m prior 100", {"M_PRIOR_PAIRS": 100.0}),
    ("u prior 0 (free u)", {"U_PRIOR_PAIRS": 0.0}), ("u prior 100", {"U_PRIOR_PAIRS": 100.0}),
    ("u prior 10000", {"U_PRIOR_PAIRS": 10000.0}),
    ("window 2", {"REFINING_WINDOW": 2}), ("window 10", {"REFINING_WINDOW": 10}),
    ("threshold 0.5", {"match_threshold": 0.5}), ("threshold 0.99", {"match_threshold": 0.99}),
    ("cannot-link 0.001", {"cannot_link_threshold": 0.001}), ("cannot-link 0.0001", {"cannot_link_threshold": 0.0001}),
    ("cannot-link 0.00001", {"cannot_link_threshold": 0.00001}), ("cannot-link 0 (no guard)", {"cannot_link_threshold": 0.0}),
    ("one-to-one off", {"one_to_one": False}), ("one-to-one at 0.3", {"one_to_one_threshold": 0.3}),
    ("one-to-one at 0.7", {"one_to_one_threshold": 0.7}), ("one-to-one at 0.9", {"one_to_one_threshold": 0.9}),
    ("duplicates significance 0.01", {"DUPLICATES_SIGNIFICANCE": 0.01}),
    ("duplicates significance 0.2", {"DUPLICATES_SIGNIFICANCE": 0.2}),
]
MODULE_OF = {"M_PRIOR_PAIRS": model, "U_PRIOR_PAIRS": model, "REFINING_WINDOW": blocking,
             "DUPLICATES_SIGNIFICANCE": clustering}


def f1(data: datasets.RealDataset, out: Path, changes: dict, inferred: bool = False) -> float:
    saved = {name: getattr(MODULE_OF[name], name) for name in changes if name in MODULE_OF}
    config = infer_config(input_files(data.files, None)) if inferred else load_config(data.config)
    settings = {name: value for name, value in changes.items() if name not in MODULE_OF}
    if "match_threshold" in settings:
        settings["review_threshold"] = min(settings["match_threshold"], config.model.review_threshold)
    if settings:
        config = replace(config, model=replace(config.model, **settings))
    try:
        for name, value in changes.items():
            if name in MODULE_OF:
                setattr(MODULE_OF[name], name, value)
        Linker(config).run(data.files, out)
    finally:
        for name, value in saved.items():
            setattr(MODULE_OF[name], name, value)
    truth = pd.read_parquet(data.truth)
    entity = dict(zip(truth["source"] + ":" + truth["record_id"], truth["entity"]))
    entities = pd.read_parquet(out / "entities.parquet")
    entities["true"] = (entities["source"] + ":" + entities["record_id"]).map(entity)
    entities = entities.dropna(subset=["true"])
    return evaluate_clusters(entities["entity_id"], entities["true"]).pairwise_f1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--settings", nargs="*", help="labels of the settings to run (default: all)")
    parser.add_argument("--inferred", action="store_true", help="each set with no config (inferred), not its short one")
    args = parser.parse_args()
    shared = ROOT.parent / "shared" / "data"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        makers = {"FEBRL3": lambda: datasets.febrl(3, work), "FEBRL4": lambda: datasets.febrl(4, work),
                  "RLdata500": lambda: datasets.rldata(500, work), "RLdata10000": lambda: datasets.rldata(10000, work),
                  "PatentsView": lambda: datasets.patentsview(work),
                  "Fodors-Zagat": lambda: datasets.fodors_zagat(shared, work)}
        sets = {name: make() for name, make in makers.items() if not args.only or name in args.only}
        print("| setting | " + " | ".join(sets) + " |")
        print("|---|" + "---:|" * len(sets))
        for label, changes in SETTINGS:
            if args.settings and label not in args.settings:
                continue
            scores = [f1(data, work / f"{name}_{label}".replace(" ", "_"), changes, args.inferred)
                      for name, data in sets.items()]
            print(f"| {label} | " + " | ".join(f"{score:.4f}" for score in scores) + " |", flush=True)


if __name__ == "__main__":
    main()
