"""Reason codes: which evidence raised a customer's score, said in words.

For each customer and each reason (a small set of related features), the score is
recomputed with those features set to a typical customer's values (the median of the
customers not confirmed as fraud). The drop is that reason's contribution; the reasons with
the largest positive drops are reported, each as a code and a sentence built from the
customer's own values ("device shared with 7 other customers, 2 confirmed fraud"). This
occlusion works for any scorer, the trees and the anomaly forest alike.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

REASON_FEATURES: dict[str, list[str]] = {
    "shared_device": ["device_holders", "device_known_fraud"],
    "shared_phone": ["phone_holders", "phone_known_fraud"],
    "shared_email": ["email_holders", "email_known_fraud"],
    "shared_address": ["address_holders", "address_known_fraud"],
    "fraud_neighbourhood": ["component_size", "component_known_fraud", "community_size", "community_known_fraud",
                            "neighbour_fraud_share"],
    "identity_inconsistency": ["surnames_per_identifier"],
    "velocity": ["orders", "orders_per_active_day"],
    "new_account": ["account_age_days"],
    "risky_categories": ["risky_share", "avg_order_value", "log_spend"],
    "chargebacks": ["chargebacks", "chargeback_rate", "return_rate"],
    "channel_hopping": ["channels", "devices", "sessions_per_device", "records"],
    "embedding": [],  # filled with the embedding columns present
}
MIN_CONTRIBUTION = 0.002  # anomaly score drops smaller than this are noise, not reasons
LOG_ODDS_CONTRIBUTION = 0.05  # the same for a classifier's log-odds (about 5% on the odds)
NO_REASON = "no risk signal stands out"


def _plural(n: float, word: str) -> str:
    n = int(round(n))
    return f"{n} {word}" + ("" if n == 1 else "s")


def reason_text(code: str, row: pd.Series) -> str:
    """The sentence for one reason, from the customer's raw feature values."""
    def get(name: str) -> float:
        value = row.get(name)
        return 0.0 if value is None or pd.isna(value) else float(value)

    if code.startswith("shared_"):
        kind = code.removeprefix("shared_")
        others = get(f"{kind}_holders") - 1
        text = f"{kind} shared with {_plural(others, 'other customer')}"
        if f"{kind}_known_fraud" in row:
            text += f", {int(get(f'{kind}_known_fraud'))} confirmed fraud"
        return text
    if code == "fraud_neighbourhood":
        text = f"linked through shared identifiers to {_plural(get('component_size') - 1, 'customer')}"
        if "component_known_fraud" in row:
            text += (f", {int(get('component_known_fraud'))} confirmed fraud"
                     f" (neighbour fraud share {get('neighbour_fraud_share'):.2f})")
        return text
    if code == "identity_inconsistency":
        return f"one of its identifiers is used under {_plural(get('surnames_per_identifier'), 'surname')}"
    if code == "velocity":
        return f"{_plural(get('orders'), 'order')}, {get('orders_per_active_day'):.1f} per active day"
    if code == "new_account":
        if pd.isna(row.get("account_age_days")):
            return "no order or session history"
        return f"account first seen {_plural(get('account_age_days'), 'day')} ago"
    if code == "risky_categories":
        return f"{get('risky_share'):.0%} of spend on high-risk categories, average order {get('avg_order_value'):,.0f}"
    if code == "chargebacks":
        return f"{_plural(get('chargebacks'), 'chargeback')} in {_plural(get('orders'), 'order')}"
    if code == "channel_hopping":
        return (f"{_plural(get('devices'), 'device')} and {_plural(get('channels'), 'channel')}, "
                f"{get('sessions_per_device'):.1f} sessions per device")
    if code == "embedding":
        return "behaves like confirmed fraud in the learned embedding (purchases and devices)"
    raise KeyError(code)


def reason_groups(columns: list[str]) -> dict[str, list[str]]:
    """The reasons whose features the scorer uses, restricted to those features."""
    groups = {}
    for code, features in REASON_FEATURES.items():
        present = [c for c in columns if c.startswith("emb_")] if code == "embedding" else \
            [c for c in features if c in columns]
        if present:
            groups[code] = present
    return groups


def contributions(features: pd.DataFrame, predict: Callable[[pd.DataFrame], np.ndarray],
                  reference: pd.Series, chunk: int = 50_000) -> pd.DataFrame:
    """Score drop per reason (columns) and customer (rows) when the reason's features take
    the reference values."""
    groups = reason_groups(list(features.columns))
    out = pd.DataFrame(index=features.index, columns=list(groups), dtype=float)
    for start in range(0, len(features), chunk):
        part = features.iloc[start:start + chunk]
        base = predict(part)
        for code, columns in groups.items():
            occluded = part.copy()
            occluded[columns] = reference[columns].to_numpy()
            out.iloc[start:start + chunk, out.columns.get_loc(code)] = base - predict(occluded)
    return out


def log_odds(probability: np.ndarray) -> np.ndarray:
    p = np.clip(probability, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def top_reasons(drops: pd.DataFrame, raw: pd.DataFrame, top: int = 3,
                min_contribution: float = MIN_CONTRIBUTION) -> tuple[list[list[str]], list[list[str]]]:
    """(codes, sentences) per customer: up to ``top`` reasons, largest contribution first,
    each at least ``min_contribution``."""
    values = drops.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :top]
    names = np.asarray(drops.columns)
    codes, texts = [], []
    for i, picks in enumerate(order):
        chosen = [names[j] for j in picks if values[i, j] >= min_contribution]
        codes.append(chosen)
        row = raw.iloc[i]
        texts.append([reason_text(c, row) for c in chosen] or [NO_REASON])
    return codes, texts
