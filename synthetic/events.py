"""Products, orders and web/app sessions, driven by each customer's persona and fraud role."""
from __future__ import annotations

import numpy as np
import pandas as pd

from identigraph.synthetic.channels import SOURCES

# category: (median price, risky for fraud)
CATEGORIES: dict[str, tuple[float, bool]] = {
    "groceries": (8, False), "household": (15, False), "beauty": (25, False), "fashion": (45, False),
    "shoes": (70, False), "sports": (55, False), "toys": (30, False), "books": (14, False),
    "garden": (40, False), "home": (60, False), "kitchen": (35, False), "pet": (20, False),
    "health": (18, False), "baby": (25, False), "music": (15, False), "games": (50, False),
    "furniture": (300, False), "electronics": (250, True), "phones": (600, True),
    "gift cards": (50, True), "jewellery": (150, True),
}
PRODUCT_WORDS = ("Classic", "Premium", "Eco", "Smart", "Compact", "Deluxe", "Essential", "Pro", "Mini", "Family")
CHANNEL_OF_SOURCE = {"crm": None, "web_accounts": "web", "app_users": "app",
                     "store_loyalty": "store", "callcenter": "phone"}
# persona: (mean orders, price factor low, price factor high, end offset in days before as_of)
PERSONA_BEHAVIOUR = {
    "loyal_high_value": (14.0, 1.2, 1.8, 0), "regular": (6.0, 0.9, 1.0, 0),
    "bargain_hunter": (7.0, 0.5, 0.75, 0), "lapsed": (4.0, 0.9, 1.0, 300),
    "new": (2.0, 0.9, 1.0, 0), "occasional": (1.5, 0.9, 1.0, 0), "fraud": (9.0, 1.0, 1.0, 0),
}


# The purchase model, named because benchmarks/purchase_ceiling.py computes the best AUC any
# link predictor can reach on this data from exactly these numbers.
FAVOURITE_CATEGORIES = 2  # each customer's favourite (non-risky) categories
EXPLORE_SHARE = 0.3  # orders in a uniformly drawn category instead of a favourite
FRAUD_RISKY_SHARE = 0.8  # a busting-out fraudster's orders in a risky category
BRAND_LINES = 3
BRAND_LOYALTY = 0.5  # orders kept inside the customer's brand line


def make_products(rng: np.random.Generator, per_category: int = 100) -> pd.DataFrame:
    rows = []
    for category, (median, _) in CATEGORIES.items():
        if category == "gift cards":
            prices = rng.choice([10.0, 25.0, 50.0, 100.0, 200.0], per_category)
        else:
            prices = np.round(median * rng.lognormal(0.0, 0.5, per_category), 2)
        for k in range(per_category):
            word = PRODUCT_WORDS[int(rng.integers(0, len(PRODUCT_WORDS)))]
            rows.append((f"{word} {category.rstrip('s').title()} {k + 1:03d}", category, float(prices[k])))
    frame = pd.DataFrame(rows, columns=["name", "category", "price"])
    frame.insert(0, "product_id", [f"P{i + 1:05d}" for i in range(len(frame))])
    return frame


def _uniform_between(rng: np.random.Generator, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    start_s = start.astype("datetime64[s]").astype(np.int64)
    end_s = np.maximum(end.astype("datetime64[s]").astype(np.int64), start_s + 3600)
    return (start_s + (rng.random(len(start)) * (end_s - start_s)).astype(np.int64)).astype("datetime64[s]")


def _pick_device(rng: np.random.Generator, devices: pd.DataFrame, owner: np.ndarray) -> np.ndarray:
    """Row index into ``devices`` (sorted by owner_row) of one of each owner's devices."""
    owners = devices["owner_row"].to_numpy()
    first = np.searchsorted(owners, owner, side="left")
    count = np.searchsorted(owners, owner, side="right") - first
    return first + (rng.random(len(owner)) * count).astype(np.int64)


def make_orders(rng: np.random.Generator, people: pd.DataFrame, records: pd.DataFrame,
                devices: pd.DataFrame, products: pd.DataFrame, as_of: np.datetime64,
                first_order_number: int) -> pd.DataFrame:
    """``records``: one row per record with owner_row, source, record_id, created_at."""
    ordering = records[records["source"].map(CHANNEL_OF_SOURCE).notna()].reset_index(drop=True)
    persona = people["persona"].to_numpy()[ordering["owner_row"].to_numpy()]
    per_customer_records = ordering.groupby("owner_row")["owner_row"].transform("size").to_numpy()
    mean = np.array([PERSONA_BEHAVIOUR[p][0] for p in persona]) / per_customer_records
    counts = rng.poisson(mean)
    row = np.repeat(np.arange(len(ordering)), counts)
    owner = ordering["owner_row"].to_numpy()[row]
    order_persona = persona[row]
    fraud = order_persona == "fraud"
    n = len(row)

    categories = np.array(list(CATEGORIES), dtype=object)
    risky = np.array([CATEGORIES[k][1] for k in categories])
    safe_categories = np.flatnonzero(~risky)
    favourite = rng.choice(safe_categories, size=(len(people), FAVOURITE_CATEGORIES))
    category = favourite[owner, rng.integers(0, FAVOURITE_CATEGORIES, n)]
    explore = rng.random(n) < EXPLORE_SHARE
    category[explore] = rng.choice(len(categories), explore.sum())
    risky_pick = fraud & (rng.random(n) < FRAUD_RISKY_SHARE)
    category[risky_pick] = rng.choice(np.flatnonzero(risky), risky_pick.sum())
    # Within a category sales follow a Zipf law (weight 1/rank, the catalogue's first products
    # selling most), and half of a customer's purchases stay in their brand line (every third
    # product): real baskets are skewed and loyal, not uniform, and it is this structure that
    # recommenders and embeddings learn from.
    brand = rng.integers(0, BRAND_LINES, len(people))[owner]
    loyal = rng.random(n) < BRAND_LOYALTY
    by_category = products.groupby("category").indices
    product_row = np.empty(n, dtype=np.int64)
    for k, name in enumerate(categories):
        rows = by_category[name]
        weight = 1.0 / np.arange(1, len(rows) + 1)
        chosen = category == k
        anywhere = chosen & ~loyal
        product_row[anywhere] = rng.choice(rows, anywhere.sum(), p=weight / weight.sum())
        for line in range(BRAND_LINES):
            in_line = chosen & loyal & (brand == line)
            line_weight = weight[line::BRAND_LINES]
            product_row[in_line] = rng.choice(rows[line::BRAND_LINES], in_line.sum(), p=line_weight / line_weight.sum())

    quantity = rng.geometric(0.6, n)
    quantity[fraud] = rng.integers(1, 6, fraud.sum())
    low = np.array([PERSONA_BEHAVIOUR[p][1] for p in order_persona])
    high = np.array([PERSONA_BEHAVIOUR[p][2] for p in order_persona])
    price = products["price"].to_numpy()[product_row]
    amount = np.round(price * quantity * (low + rng.random(n) * (high - low)), 2)

    start = ordering["created_at"].to_numpy()[row]
    end_offset = np.array([PERSONA_BEHAVIOUR[p][3] for p in order_persona]).astype("timedelta64[D]")
    end = np.where(fraud, start + np.timedelta64(14, "D"), as_of - end_offset)
    ordered_at = _uniform_between(rng, start, end)

    status = np.full(n, "completed", dtype=object)
    returned = rng.random(n) < np.where(order_persona == "bargain_hunter", 0.10, 0.04)
    status[returned] = "returned"
    chargeback = rng.random(n) < np.where(fraud, 0.30, 0.003)
    status[chargeback] = "chargeback"

    source = ordering["source"].to_numpy()[row]
    online = np.isin(source, ["web_accounts", "app_users"])
    device_id = np.full(n, None, dtype=object)
    device_id[online] = devices["device_id"].to_numpy()[_pick_device(rng, devices, owner[online])]
    return pd.DataFrame({
        "order_id": pd.Series(first_order_number + np.arange(n)).map("O{:010d}".format).to_numpy(object),
        "source": source,
        "record_id": ordering["record_id"].to_numpy()[row],
        "product_id": products["product_id"].to_numpy()[product_row],
        "quantity": quantity.astype(np.int32),
        "amount": amount,
        "ordered_at": ordered_at.astype("datetime64[ms]"),
        "channel": pd.Series(source).map(CHANNEL_OF_SOURCE).to_numpy(object),
        "device_id": device_id,
        "status": status,
    })


def make_sessions(rng: np.random.Generator, people: pd.DataFrame, records: pd.DataFrame,
                  devices: pd.DataFrame, orders: pd.DataFrame, as_of: np.datetime64,
                  first_session_number: int) -> pd.DataFrame:
    online = records[records["source"].isin(["web_accounts", "app_users"])].reset_index(drop=True)
    key = online["source"] + "\x1f" + online["record_id"]
    order_counts = (orders["source"] + "\x1f" + orders["record_id"]).value_counts()
    per_record_orders = key.map(order_counts).fillna(0).to_numpy()
    fraud = (people["persona"].to_numpy() == "fraud")[online["owner_row"].to_numpy()]
    counts = rng.poisson(2.0 + 2.0 * per_record_orders + 6.0 * fraud)
    # A ring keeps its cultivating identities active: each logs in at least once.
    in_ring = (people["fraud_type"].to_numpy() == "ring")[online["owner_row"].to_numpy()]
    counts[in_ring] = np.maximum(counts[in_ring], 1)
    row = np.repeat(np.arange(len(online)), counts)
    owner = online["owner_row"].to_numpy()[row]
    device_row = _pick_device(rng, devices, owner)
    ip = devices["ip"].to_numpy()[device_row].copy()
    roaming = rng.random(len(row)) < 0.2
    ip[roaming] = (pd.Series(rng.integers(1, 255, roaming.sum())).astype(str) + ".0."
                   + pd.Series(rng.integers(0, 256, roaming.sum())).astype(str) + "."
                   + pd.Series(rng.integers(1, 255, roaming.sum())).astype(str)).to_numpy(object)
    start = online["created_at"].to_numpy()[row]
    end = np.where(fraud[row], start + np.timedelta64(14, "D"), as_of)
    return pd.DataFrame({
        "session_id": pd.Series(first_session_number + np.arange(len(row))).map("S{:010d}".format).to_numpy(object),
        "source": online["source"].to_numpy()[row],
        "record_id": online["record_id"].to_numpy()[row],
        "device_id": devices["device_id"].to_numpy()[device_row],
        "device_type": devices["device_type"].to_numpy()[device_row],
        "ip": ip,
        "started_at": _uniform_between(rng, start, end).astype("datetime64[ms]"),
    })


__all__ = ["CATEGORIES", "SOURCES", "make_orders", "make_products", "make_sessions"]
