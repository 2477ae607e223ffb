"""Resolution outputs + orders, sessions and products -> node and edge tables (Parquet).

This table form is the embedded default: later stages read it without a server, and
``identigraph load`` copies it into Neo4j. Event rows that cannot be placed in the graph
(an order of a record resolution quarantined, a product not in the catalogue) are written
to ``quarantine.parquet`` with a reason: rows in = rows used + rows quarantined.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from identigraph.graph.model import EDGES, NODES
from identigraph.resolution.ingest import customer_of_record, record_keys
from identigraph.resolution.privacy import mask

QUARANTINE_COLUMNS = ["table", "row", "reason"]


class GraphInputError(ValueError):
    """A required input is missing or malformed; the message names it and what to do."""


@dataclass
class EventAccount:
    read: int = 0
    used: int = 0
    quarantined: int = 0


@dataclass
class GraphBuildSummary:
    out_dir: Path
    nodes: dict[str, int]
    edges: dict[str, int]
    events: dict[str, EventAccount] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


def _read(path: Path, what: str) -> pd.DataFrame:
    if not path.exists():
        raise GraphInputError(f"{path}: {what} not found; run `identigraph resolve` first "
                              "(or pass the folder that holds its outputs)")
    return pd.read_parquet(path)


def _events_file(events_dir: Path | None, stem: str) -> Path | None:
    if events_dir is None:
        return None
    for suffix in (".parquet", ".csv"):
        if (events_dir / f"{stem}{suffix}").exists():
            return events_dir / f"{stem}{suffix}"
    return None


def _read_events(path: Path | None, required: list[str]) -> pd.DataFrame | None:
    if path is None:
        return None
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str, keep_default_na=False,
                                                                              na_values=[""])
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise GraphInputError(f"{path}: columns {missing} are missing (expected {required}; see docs/architecture.md)")
    return frame


def _quarantine(table: str, rows: np.ndarray, reason: np.ndarray | str) -> pd.DataFrame:
    return pd.DataFrame({"table": table, "row": rows.astype(np.int64), "reason": reason})


def _place_events(name: str, frame: pd.DataFrame, record_entity: pd.Series, account: EventAccount,
                  quarantined: list[pd.DataFrame], products: pd.Series | None = None) -> pd.DataFrame:
    """Rows of an event table whose record resolved (and whose product exists), with
    ``record_key`` and ``customer_id``; the others go to quarantine with a reason."""
    account.read = len(frame)
    keys = record_keys(frame["source"], frame["record_id"])
    customer = keys.map(record_entity)
    reason = pd.Series(None, index=frame.index, dtype=object)
    reason[customer.isna()] = "record not among the resolved records (quarantined by resolution or unknown)"
    if products is not None:
        unknown_product = ~frame["product_id"].isin(products) & reason.isna()
        reason[unknown_product] = "product_id not in products"
    bad = reason.notna().to_numpy()
    if bad.any():
        quarantined.append(_quarantine(name, np.flatnonzero(bad), reason[bad].to_numpy(object)))
    placed = frame.loc[~bad].assign(record_key=keys[~bad], customer_id=customer[~bad])
    account.used, account.quarantined = len(placed), int(bad.sum())
    return placed


def _identifier_edges(records: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """Customer -> identifier edges with the number of the customer's records holding it."""
    frame = pd.DataFrame({"start": records["customer_id"], "end": key}).dropna()
    return frame.groupby(["start", "end"], sort=True).size().rename("records").reset_index()


def address_keys(records: pd.DataFrame) -> pd.Series:
    """``street|postcode`` of each record with both."""
    return (records["street"] + "|" + records["postcode"]).where(records["street"].notna() & records["postcode"].notna())


def identifier_edges(records: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """HAS_EMAIL, HAS_PHONE, HAS_ADDRESS of standardised records that carry ``customer_id``."""
    return {"HAS_EMAIL": _identifier_edges(records, records["email"]),
            "HAS_PHONE": _identifier_edges(records, records["phone"]),
            "HAS_ADDRESS": _identifier_edges(records, address_keys(records))}


def most_frequent(keys: pd.Series, values: pd.Series) -> pd.Series:
    """The most frequent non-null value per key (ties: the smallest value), indexed by key."""
    counts = pd.DataFrame({"key": keys.to_numpy(), "value": values.to_numpy()}).dropna().value_counts()
    counts = counts.reset_index(name="n").sort_values(["key", "n", "value"], ascending=[True, False, True])
    return counts.drop_duplicates("key").set_index("key")["value"]


def build_graph_tables(resolved_dir: Path, out_dir: Path, events_dir: Path | None = None) -> GraphBuildSummary:
    """Write ``nodes/<Label>.parquet`` and ``edges/<TYPE>.parquet`` under ``out_dir``."""
    started = time.perf_counter()
    resolved_dir, out_dir = Path(resolved_dir), Path(out_dir)
    records = _read(resolved_dir / "records.parquet", "records.parquet (standardised records)")
    entities = _read(resolved_dir / "entities.parquet", "entities.parquet")
    golden = _read(resolved_dir / "golden.parquet", "golden.parquet")
    pairs = _read(resolved_dir / "pairs.parquet", "pairs.parquet")

    records["record_key"] = record_keys(records["source"], records["record_id"])
    entity_of = customer_of_record(entities)
    records["customer_id"] = records["record_key"].map(entity_of)
    if records["customer_id"].isna().any():
        raise GraphInputError(f"{resolved_dir}: records.parquet and entities.parquet disagree "
                              f"({int(records['customer_id'].isna().sum())} records have no entity); "
                              "rerun `identigraph resolve` into an empty folder")

    quarantined: list[pd.DataFrame] = []
    accounts: dict[str, EventAccount] = {}
    nodes: dict[str, pd.DataFrame] = {}
    edges: dict[str, pd.DataFrame] = {}

    # Events ----------------------------------------------------------------------------
    products = _read_events(_events_file(events_dir, "products"), ["product_id", "category"])
    orders = _read_events(_events_file(events_dir, "orders"),
                          ["order_id", "source", "record_id", "product_id", "quantity", "amount", "ordered_at"])
    sessions = _read_events(_events_file(events_dir, "sessions"), ["session_id", "source", "record_id", "device_id"])
    labels = _read_events(_events_file(events_dir, "fraud_labels"), ["source", "record_id", "label"])
    if orders is not None and products is None:
        raise GraphInputError(f"{events_dir}: orders found but no products.csv/products.parquet to place them")
    if orders is not None:
        accounts["orders"] = EventAccount()
        orders = _place_events("orders", orders, entity_of, accounts["orders"], quarantined,
                               products["product_id"] if products is not None else None)
        orders["ordered_at"] = pd.to_datetime(orders["ordered_at"])
        orders["quantity"] = pd.to_numeric(orders["quantity"])
        orders["amount"] = pd.to_numeric(orders["amount"])
    if sessions is not None:
        accounts["sessions"] = EventAccount()
        sessions = _place_events("sessions", sessions, entity_of, accounts["sessions"], quarantined)
        if "started_at" in sessions:
            sessions["started_at"] = pd.to_datetime(sessions["started_at"])

    # Customers and their records --------------------------------------------------------
    customers = golden.rename(columns={"entity_id": "customer_id"}).copy()
    customers["sources"] = customers["sources"].str.split(",")
    source_records = pd.DataFrame({
        "record_key": records["record_key"], "source": records["source"], "record_id": records["record_id"],
        "first_name": records["first_name_display"], "last_name": records["last_name_display"],
        "date_of_birth": records["dob"], "email": records["email"], "phone": records.get("phone_e164"),
        "postcode": records["postcode"], "street": records["street"], "city": records["city"],
    })
    if labels is not None:
        label_of = pd.Series(labels["label"].to_numpy(), index=record_keys(labels["source"], labels["record_id"]))
        source_records["fraud_label"] = source_records["record_key"].map(label_of[~label_of.index.duplicated()])

    activity = []
    if orders is not None and len(orders):
        per_record = orders.groupby("record_key", sort=True)
        activity.append(pd.DataFrame({"orders": per_record.size(), "first_order_at": per_record["ordered_at"].min(),
                                      "last_order_at": per_record["ordered_at"].max()}))
        per_customer = orders.groupby("customer_id", sort=True)
        spend = pd.DataFrame({"orders": per_customer.size(), "total_spend": per_customer["amount"].sum().round(2),
                              "first_order_at": per_customer["ordered_at"].min(),
                              "last_order_at": per_customer["ordered_at"].max()})
        customers = customers.merge(spend, left_on="customer_id", right_index=True, how="left")
        customers["orders"] = customers["orders"].fillna(0).astype(np.int64)
        customers["total_spend"] = customers["total_spend"].fillna(0.0)
    if sessions is not None and len(sessions) and "started_at" in sessions:
        per_record = sessions.groupby("record_key", sort=True)
        activity.append(pd.DataFrame({"sessions": per_record.size(), "first_session_at": per_record["started_at"].min(),
                                      "last_session_at": per_record["started_at"].max()}))
    for frame in activity:
        source_records = source_records.merge(frame, left_on="record_key", right_index=True, how="left")
    for column in ("orders", "sessions"):
        if column in source_records:
            source_records[column] = source_records[column].fillna(0).astype(np.int64)
    nodes["Customer"] = customers
    nodes["SourceRecord"] = source_records

    # Pair evidence: pairs inside one customer, strongest match per record.
    pairs["start"] = record_keys(pairs["source_l"], pairs["record_id_l"])
    pairs["end"] = record_keys(pairs["source_r"], pairs["record_id_r"])
    inside = pairs["start"].map(entity_of).to_numpy() == pairs["end"].map(entity_of).to_numpy()
    matched = pairs.loc[inside]
    weights = [c for c in matched.columns if c.startswith("weight_")]
    edges["MATCHED"] = pd.DataFrame({"start": matched["start"], "end": matched["end"],
                                     "weight": matched["match_weight"].round(4),
                                     "probability": matched["match_probability"],
                                     **{c: matched[c].round(4) for c in weights}}).reset_index(drop=True)
    strongest = pd.concat([matched[["start", "match_probability"]].rename(columns={"start": "key"}),
                           matched[["end", "match_probability"]].rename(columns={"end": "key"})])
    strongest = strongest.groupby("key")["match_probability"].max()
    single = records["customer_id"].map(customers.set_index("customer_id")["record_count"]) == 1
    probability = records["record_key"].map(strongest)
    probability[single.to_numpy()] = 1.0
    edges["RESOLVED_TO"] = pd.DataFrame({"start": records["record_key"], "end": records["customer_id"],
                                         "match_probability": probability.to_numpy()})

    # Identifiers as nodes: shared ones become visible as structure.
    email = records["email"]
    phone = records["phone"]
    address = address_keys(records)
    nodes["Email"] = pd.DataFrame({"address": np.sort(email.dropna().unique())})
    phone_nodes = pd.DataFrame({"number": phone, "e164": records.get("phone_e164")}).dropna(subset=["number"])
    nodes["Phone"] = phone_nodes.sort_values(["number", "e164"]).drop_duplicates("number").reset_index(drop=True)
    address_nodes = pd.DataFrame({"address_key": address, "street": records["street"], "postcode": records["postcode"],
                                  "city": records["city"]}).dropna(subset=["address_key"])
    # City: the one most often written with that street and postcode.
    address_nodes = address_nodes.drop_duplicates("address_key").sort_values("address_key").reset_index(drop=True)
    city = most_frequent(address, records["city"])
    address_nodes["city"] = address_nodes["address_key"].map(city)
    nodes["Address"] = address_nodes
    edges.update(identifier_edges(records))

    # Products, categories, purchases, devices ----------------------------------------------
    if products is not None:
        product_nodes = products.copy()
        if "price" in product_nodes:
            product_nodes["price"] = pd.to_numeric(product_nodes["price"])
        nodes["Product"] = product_nodes.drop_duplicates("product_id").reset_index(drop=True)
        nodes["Category"] = pd.DataFrame({"name": np.sort(products["category"].dropna().unique())})
        edges["IN_CATEGORY"] = pd.DataFrame({"start": nodes["Product"]["product_id"],
                                             "end": nodes["Product"]["category"]}).dropna()
    if orders is not None:
        grouped = orders.groupby(["customer_id", "product_id"], sort=True)
        purchased = pd.DataFrame({"orders": grouped.size(), "quantity": grouped["quantity"].sum(),
                                  "amount": grouped["amount"].sum().round(2),
                                  "first_at": grouped["ordered_at"].min(), "last_at": grouped["ordered_at"].max()})
        if "status" in orders:
            status = orders["status"]
            for name, value in (("returns", "returned"), ("chargebacks", "chargeback")):
                purchased[name] = orders.assign(hit=status.eq(value)).groupby(["customer_id", "product_id"])["hit"].sum()
        edges["PURCHASED"] = purchased.reset_index().rename(columns={"customer_id": "start", "product_id": "end"})
    device_events = []
    if sessions is not None:
        device_events.append(pd.DataFrame({"customer_id": sessions["customer_id"], "device_id": sessions["device_id"],
                                           "device_type": sessions.get("device_type"),
                                           "at": sessions.get("started_at"), "session": 1, "order": 0}))
    if orders is not None and "device_id" in orders:
        device_events.append(pd.DataFrame({"customer_id": orders["customer_id"], "device_id": orders["device_id"],
                                           "device_type": None, "at": orders["ordered_at"], "session": 0, "order": 1}))
    if device_events:
        events = pd.concat(device_events, ignore_index=True).dropna(subset=["device_id"])
        grouped = events.groupby(["customer_id", "device_id"], sort=True)
        edges["USED_DEVICE"] = (pd.DataFrame({"sessions": grouped["session"].sum(), "orders": grouped["order"].sum(),
                                              "first_seen": grouped["at"].min(), "last_seen": grouped["at"].max()})
                                .reset_index().rename(columns={"customer_id": "start", "device_id": "end"}))
        per_device = events.groupby("device_id", sort=True)
        nodes["Device"] = pd.DataFrame({"sessions": per_device["session"].sum(),
                                        "orders": per_device["order"].sum()}).reset_index()
        nodes["Device"].insert(1, "device_type",
                               nodes["Device"]["device_id"].map(most_frequent(events["device_id"], events["device_type"])))

    # Write ------------------------------------------------------------------------------
    (out_dir / "nodes").mkdir(parents=True, exist_ok=True)
    (out_dir / "edges").mkdir(parents=True, exist_ok=True)
    for label, frame in nodes.items():
        key = NODES[label].key
        frame = frame[[key, *(c for c in frame.columns if c != key)]]
        if frame[key].duplicated().any():
            raise GraphInputError(f"{label}: key {key} is not unique in the inputs "
                                  f"(e.g. {mask(frame.loc[frame[key].duplicated(), key].iloc[0])}, masked)")
        frame.reset_index(drop=True).to_parquet(out_dir / "nodes" / f"{label}.parquet", index=False)
    for edge_type, frame in edges.items():
        assert edge_type in EDGES, edge_type
        frame.reset_index(drop=True).to_parquet(out_dir / "edges" / f"{edge_type}.parquet", index=False)
    quarantine = (pd.concat(quarantined, ignore_index=True) if quarantined
                  else pd.DataFrame({c: pd.Series(dtype=object) for c in QUARANTINE_COLUMNS}))
    quarantine.to_parquet(out_dir / "quarantine.parquet", index=False)
    summary = GraphBuildSummary(out_dir=out_dir, nodes={k: len(v) for k, v in nodes.items()},
                                edges={k: len(v) for k, v in edges.items()}, events=accounts,
                                seconds=round(time.perf_counter() - started, 3))
    (out_dir / "graph.json").write_text(json.dumps(summary.to_json(), indent=2))
    return summary
