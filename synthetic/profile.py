"""A profile of a generated data set: channel files, events and (when present) the truth."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from identigraph.resolution.io import read_table
from identigraph.resolution.profiling import ColumnProfile, profile_columns
from identigraph.synthetic.channels import SOURCE_FILES


@dataclass
class DatasetProfile:
    channels: dict[str, tuple[int, list[ColumnProfile]]] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    customers: int | None = None
    records_per_customer: dict[int, int] = field(default_factory=dict)
    fraud_customers: int | None = None
    rings: int | None = None
    labels: dict[str, int] = field(default_factory=dict)


def profile_dataset(directory: Path) -> DatasetProfile:
    directory = Path(directory)
    profile = DatasetProfile()
    for filename in SOURCE_FILES.values():
        path = directory / filename
        if path.exists():
            frame = read_table(path)
            profile.channels[filename] = (len(frame), profile_columns(frame))
    for name in ("products.csv", "orders.parquet", "sessions.parquet"):
        path = directory / name
        if path.exists():
            profile.events[name] = len(pd.read_csv(path) if name.endswith(".csv") else pd.read_parquet(path, columns=[]))
    labels = directory / "fraud_labels.csv"
    if labels.exists():
        profile.labels = pd.read_csv(labels, dtype=str)["label"].value_counts().to_dict()
    truth = directory / "truth"
    if (truth / "records.parquet").exists() and (truth / "customers.parquet").exists():
        records = pd.read_parquet(truth / "records.parquet")
        customers = pd.read_parquet(truth / "customers.parquet")
        profile.customers = len(customers)
        per_customer = records.groupby("customer_id").size().value_counts().sort_index()
        profile.records_per_customer = {int(k): int(v) for k, v in per_customer.items()}
        profile.fraud_customers = int(customers["is_fraud"].sum())
        profile.rings = int(customers["ring_id"].nunique())
    return profile
