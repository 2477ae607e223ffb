"""Synthetic multi-channel customer data with ground truth (``identigraph generate``)."""
from identigraph.synthetic.config import GeneratorConfig
from identigraph.synthetic.generate import GenerationSummary, generate_dataset

__all__ = ["GeneratorConfig", "GenerationSummary", "generate_dataset"]
