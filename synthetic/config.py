"""Typed settings of the generator, validated when built."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

LOCALES = ("en_GB", "en_US", "zh_CN")


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int
    seed: int = 42
    fraud_rate: float = 0.01
    # Customers are generated and written this many at a time, so memory stays bounded
    # whatever `customers` is.
    chunk_size: int = 100_000
    as_of: date = date(2026, 11, 1)
    locale_weights: dict[str, float] = field(
        default_factory=lambda: {"en_GB": 0.45, "en_US": 0.40, "zh_CN": 0.15}
    )

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError(f"customers must be at least 1, got {self.customers}")
        if not 0.0 <= self.fraud_rate <= 0.5:
            raise ValueError(f"fraud_rate must be between 0 and 0.5, got {self.fraud_rate}")
        if self.chunk_size < 1_000:
            raise ValueError(f"chunk_size must be at least 1000, got {self.chunk_size}")
        unknown = set(self.locale_weights) - set(LOCALES)
        if unknown:
            raise ValueError(f"unsupported locales {sorted(unknown)}; choose from {LOCALES}")
        if abs(sum(self.locale_weights.values()) - 1.0) > 1e-6:
            raise ValueError("locale_weights must sum to 1")
