"""Generator throughput at 100k, 300k and 1M customers, beside a Faker-per-row baseline.

    make bench            # or: python benchmarks/bench_generate.py [--sizes 100000 300000 1000000]

Each size runs in a fresh process and reports its own peak RSS (VmHWM). The baseline builds the same
core fields (name, date of birth, e-mail, phone, address) with one Faker call per value,
the way a hand-written generator usually does, on a small sample, and is quoted per customer.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, re, sys, time
from pathlib import Path
from identigraph.synthetic import GeneratorConfig, generate_dataset
size, out = int(sys.argv[1]), Path(sys.argv[2])
summary = generate_dataset(GeneratorConfig(customers=size, seed=1), out)
# VmHWM restarts with exec's new address space; ru_maxrss would carry the parent's size.
peak = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
print(json.dumps({"seconds": summary.seconds, "records": summary.channel_records, "peak_rss_mb": peak,
                  "orders": summary.rows["orders.parquet"], "sessions": summary.rows["sessions.parquet"]}))
"""


def run_size(size: int, workdir: Path) -> dict:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", CHILD, str(size), str(workdir / f"n{size}")],
                            capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return {"customers": size, "wall_s": wall, **figures}


def faker_per_row_baseline(customers: int = 5_000) -> float:
    """Seconds per customer for one Faker call per value."""
    from faker import Faker

    fake = Faker(["en_GB", "en_US", "zh_CN"])
    fake.seed_instance(1)
    started = time.perf_counter()
    for _ in range(customers):
        (fake.first_name(), fake.last_name(), fake.date_of_birth(), fake.email(), fake.phone_number(),
         fake.street_address(), fake.city(), fake.postcode())
    return (time.perf_counter() - started) / customers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    args = parser.parse_args()
    baseline = faker_per_row_baseline()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            rows.append(run_size(size, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    print()
    print("| customers | channel records | orders | sessions | wall s | peak RSS MB | µs / customer | Faker-per-row baseline µs / customer (core fields only) | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        per_customer = row["wall_s"] / row["customers"] * 1e6
        print(f"| {row['customers']:,} | {row['records']:,} | {row['orders']:,} | {row['sessions']:,} | "
              f"{row['wall_s']:.1f} | {row['peak_rss_mb']:.0f} | {per_customer:.0f} | {baseline * 1e6:.0f} | "
              f"{baseline * 1e6 / per_customer:.1f}x |")


if __name__ == "__main__":
    main()
