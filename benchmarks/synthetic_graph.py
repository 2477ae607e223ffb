"""The data the graph-stage benchmarks start from: the synthetic channel files (seed 5),
resolved with the config the generator writes, and built into graph tables.

    work/data      channel files, events, truth
    work/resolved  resolution outputs
    work/tables    node and edge tables (``identigraph graph build``)
"""
from __future__ import annotations

import time
from pathlib import Path

from identigraph.graph.build import build_graph_tables
from identigraph.resolution.config import load_config
from identigraph.resolution.linker import Linker
from identigraph.synthetic import GeneratorConfig, generate_dataset


def synthetic_graph_tables(work: Path, customers: int):
    """Generate, resolve and build under ``work``; returns the table build's summary and its
    seconds (the generation and resolution before it are not timed)."""
    generate_dataset(GeneratorConfig(customers=customers, seed=5), work / "data")
    Linker(load_config(work / "data" / "linkage.toml")).run([work / "data"], work / "resolved")
    started = time.perf_counter()
    summary = build_graph_tables(work / "resolved", work / "tables", work / "data")
    return summary, time.perf_counter() - started
