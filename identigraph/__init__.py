"""identigraph: customer identity resolution, a Neo4j knowledge graph, GNN embeddings,
segments and fraud-risk scores.

The library's entry points, for use from Python (the ``identigraph`` command is a thin shell
over the same functions; docs/cli.md)::

    from pathlib import Path

    from identigraph import Linker, load_config

    result = Linker(load_config(Path("linkage.toml"))).run([Path("crm.csv"), Path("shop.parquet")], Path("resolved"))

Each name below is imported on first use, so ``import identigraph`` stays quick and the
GNN names (``embed``) need the ``gnn`` extra only when they are used.
"""
from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from pathlib import Path as _Path
from typing import TYPE_CHECKING, Any

# The checkout keeps graph/, resolution/, embeddings/, scoring/, synthetic/ and cli/ at its top
# level (setuptools maps them into this package when it builds a wheel); run from a checkout,
# the package's subpackages are found there.
_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "resolution" / "__init__.py").is_file():
    __path__.append(str(_checkout))

try:
    __version__ = _metadata.version("identigraph")
except _metadata.PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"

# public name -> (module, attribute)
_PUBLIC = {
    "Linker": ("identigraph.resolution.linker", "Linker"),
    "resolve_files": ("identigraph.resolution.jobs", "resolve_files"),
    "ResolutionResult": ("identigraph.resolution.linker", "ResolutionResult"),
    "LinkageConfig": ("identigraph.resolution.config", "LinkageConfig"),
    "load_config": ("identigraph.resolution.config", "load_config"),
    "infer_config": ("identigraph.resolution.infer", "infer_config"),
    "evaluate_entities": ("identigraph.resolution.evaluation", "evaluate_entities"),
    "explain_pair": ("identigraph.resolution.explain", "explain_pair"),
    "build_graph_tables": ("identigraph.graph.build", "build_graph_tables"),
    "import_graph": ("identigraph.graph.mapping", "import_graph"),
    "load_mapping": ("identigraph.graph.mapping", "load_mapping"),
    "load_graph": ("identigraph.graph.load", "load_graph"),
    "score_customers": ("identigraph.scoring.pipeline", "score_customers"),
    "score_nodes": ("identigraph.scoring.node_risk", "score_nodes"),
    "segment_customers": ("identigraph.scoring.segments", "segment_customers"),
    "segment_nodes": ("identigraph.scoring.node_segments", "segment_nodes"),
    "embed": ("identigraph.embeddings.pipeline", "embed"),
    "embed_temporal": ("identigraph.embeddings.temporal", "embed_temporal"),
    "generate_dataset": ("identigraph.synthetic.generate", "generate_dataset"),
    "GeneratorConfig": ("identigraph.synthetic.config", "GeneratorConfig"),
}

__all__ = [
    "GeneratorConfig",
    "LinkageConfig",
    "Linker",
    "ResolutionResult",
    "__version__",
    "build_graph_tables",
    "embed",
    "embed_temporal",
    "evaluate_entities",
    "explain_pair",
    "generate_dataset",
    "import_graph",
    "infer_config",
    "load_config",
    "load_graph",
    "load_mapping",
    "resolve_files",
    "score_customers",
    "score_nodes",
    "segment_customers",
    "segment_nodes",
]


if TYPE_CHECKING:  # what the names are, for type checkers and editors; imported lazily at run time
    from identigraph.embeddings.pipeline import embed
    from identigraph.embeddings.temporal import embed_temporal
    from identigraph.graph.build import build_graph_tables
    from identigraph.graph.load import load_graph
    from identigraph.graph.mapping import import_graph, load_mapping
    from identigraph.resolution.config import LinkageConfig, load_config
    from identigraph.resolution.evaluation import evaluate_entities
    from identigraph.resolution.explain import explain_pair
    from identigraph.resolution.infer import infer_config
    from identigraph.resolution.jobs import resolve_files
    from identigraph.resolution.linker import Linker, ResolutionResult
    from identigraph.scoring.node_risk import score_nodes
    from identigraph.scoring.node_segments import segment_nodes
    from identigraph.scoring.pipeline import score_customers
    from identigraph.scoring.segments import segment_customers
    from identigraph.synthetic.config import GeneratorConfig
    from identigraph.synthetic.generate import generate_dataset


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'identigraph' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
