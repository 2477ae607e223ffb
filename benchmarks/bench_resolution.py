"""Resolution at scale beside Splink 5, in one run: the synthetic channel data at about 100k,
300k and 1M channel records.

    python benchmarks/bench_resolution.py [--sizes 100000 300000 1000000] [--skip-splink-above N]

The engines are those of ``bench_real.py`` (the real data sets): identigraph from the raw
channel files with no config (inferred inside the timed run), and Splink 5 on identigraph's
standardised records, clustered at thresholds 0.5 to 0.9999 with its best pairwise F1
reported and that threshold. Each engine runs in a fresh process, so wall time and peak
RSS are its own.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real import OURS, SPLINK, cell, synthetic  # noqa: E402
from fresh_process import peak_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--skip-splink-above", type=int, default=10**9)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for records in args.sizes:
            data = synthetic(records, workdir)
            out = workdir / f"synthetic_{records}_out"
            ours = peak_of(OURS, {"files": [str(f) for f in data.files], "truth": str(data.truth), "out": str(out)})
            print(json.dumps({"engine": "identigraph", "data": data.name, **ours}), flush=True)
            splink = {"error": "skipped (size)"}
            if "error" not in ours and ours["records"] <= args.skip_splink_above:
                splink = peak_of(SPLINK, {"records": str(out / "records.parquet"), "truth": str(data.truth),
                                          "link_type": "link_and_dedupe"})
            print(json.dumps({"engine": "splink", "data": data.name, **splink}), flush=True)
            rows.append((data.name, ours, splink))
    print()
    print("| data | records | identigraph pairwise F1 (P/R) | B-cubed F1 | Splink 5 pairwise F1 (P/R) @threshold "
          "| B-cubed F1 | identigraph s | Splink s | speed-up | identigraph peak MB | Splink peak MB |")
    print("|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for name, ours, splink in rows:
        if "error" in ours:
            print(f"| {name} | | {cell(ours)} | | | | | | | |")
            continue
        timing = ("—", "—", "—") if "error" in splink else (
            f"{splink['seconds']:.1f}", f"{splink['seconds'] / ours['seconds']:.1f}x", f"{splink['peak_rss_mb']:.0f}")
        print(f"| {name} | {ours['records']:,} | {cell(ours)} | {cell(splink)} | {ours['seconds']:.1f} | {timing[0]} | "
              f"{timing[1]} | {ours['peak_rss_mb']:.0f} | {timing[2]} |")


if __name__ == "__main__":
    main()
