"""`make bench`: every benchmark of the project, one after another (results: docs/benchmarks.md)."""
import runpy
from pathlib import Path

for script in ("bench_generate.py", "bench_resolution.py", "bench_real.py", "bench_incremental.py", "bench_review.py",
               "bench_graph_load.py", "bench_embeddings.py", "bench_scoring.py", "bench_temporal_links.py",
               "bench_node_risk.py", "bench_serve.py", "bench_match.py", "bench_match_real.py", "bench_spark.py"):
    print(f"## {script}", flush=True)
    runpy.run_path(str(Path(__file__).parent / script), run_name="__main__")
