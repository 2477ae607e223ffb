"""``identigraph generate``: the whole synthetic data set, chunk by chunk."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from identigraph.synthetic import channels as ch
from identigraph.synthetic.config import GeneratorConfig
from identigraph.synthetic.events import make_orders, make_products, make_sessions
from identigraph.synthetic.fraud import plant_fraud
from identigraph.synthetic.people import generate_people
from identigraph.synthetic.pools import build_pools
from identigraph.synthetic.writers import ChunkedTableWriter, string_schema

CHANNEL_SCHEMAS = {
    "crm": string_schema("crm_id", "title", "first_name", "last_name", "dob", "gender", "email",
                         "phone", "address_line1", "town", "postcode", "created_at"),
    "web_accounts": pa.schema([("account_id", pa.int64())] + [
        (name, pa.string()) for name in ("full_name", "email", "birth_date", "mobile", "street",
                                         "city", "zip", "signup_ts")]),
    "app_users": pa.schema([
        ("user_id", pa.string()), ("given_name", pa.string()), ("family_name", pa.string()),
        ("dob", pa.date32()), ("email_address", pa.string()), ("phone", pa.string()),
        ("postcode", pa.string()), ("loyalty_card", pa.string()), ("gender", pa.string()),
        ("registered_at", pa.timestamp("ms")),
    ]),
    "store_loyalty": string_schema("loyalty_no", "name", "date_of_birth", "phone", "email", "address",
                                   "city", "postcode", "joined_on"),
    "callcenter": string_schema("caller_ref", "first", "surname", "dob", "phone", "email", "post_code",
                                "call_date", "reason"),
}
ORDERS_SCHEMA = pa.schema([
    ("order_id", pa.string()), ("source", pa.string()), ("record_id", pa.string()),
    ("product_id", pa.string()), ("quantity", pa.int32()), ("amount", pa.float64()),
    ("ordered_at", pa.timestamp("ms")), ("channel", pa.string()), ("device_id", pa.string()),
    ("status", pa.string()),
])
SESSIONS_SCHEMA = pa.schema([
    ("session_id", pa.string()), ("source", pa.string()), ("record_id", pa.string()),
    ("device_id", pa.string()), ("device_type", pa.string()), ("ip", pa.string()),
    ("started_at", pa.timestamp("ms")),
])
TRUTH_RECORDS_SCHEMA = string_schema("source", "record_id", "customer_id")
TRUTH_CUSTOMERS_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("is_fraud", pa.bool_()), ("fraud_type", pa.string()),
    ("ring_id", pa.string()), ("household_id", pa.string()), ("persona", pa.string()),
    ("locale", pa.string()),
])
LABELS_SCHEMA = string_schema("source", "record_id", "label", "labelled_at")
# Share of fraudulent customers caught and labelled: most of those that busted out (losses
# make them visible), few of the ring identities still cultivating.
FRAUD_LABEL_RATE = {"bust_out": 0.6, "cultivating": 0.2}
LEGIT_LABEL_RATE = 0.02  # share of genuine customers cleared by a review


@dataclass
class GenerationSummary:
    out_dir: Path
    customers: int
    fraud_customers: int = 0
    rings: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def channel_records(self) -> int:
        """Rows written to the five channel files (export repeats included)."""
        return sum(self.rows.get(name, 0) for name in ch.SOURCE_FILES.values())


def _record_ids(source: str, start: int, count: int) -> np.ndarray:
    numbers = pd.Series(np.arange(start, start + count, dtype=np.int64))
    if source == "crm":
        return numbers.map("CRM{:08d}".format).to_numpy(object)
    if source == "web_accounts":
        return (10_000_000 + numbers).to_numpy()
    if source == "app_users":
        # An odd multiplier is a bijection modulo 2**40: distinct, random-looking ids.
        return ((numbers * 2654435761) % 2**40).map("app-{:010x}".format).to_numpy(object)
    if source == "store_loyalty":
        return numbers.map("634{:09d}".format).to_numpy(object)
    return numbers.map("CC-{:08d}".format).to_numpy(object)


def _fraud_counts(config: GeneratorConfig, chunk_sizes: list[int]) -> list[int]:
    total = int(round(config.customers * config.fraud_rate))
    raw = [size * config.fraud_rate for size in chunk_sizes]
    counts = [int(np.floor(x)) for x in raw]
    for i in np.argsort([c - x for c, x in zip(counts, raw)])[: total - sum(counts)]:
        counts[i] += 1
    return counts


def write_linkage_config(path: Path) -> None:
    path.write_text(LINKAGE_TOML)


LINKAGE_TOML = '''# Resolution config for the channel files of `identigraph generate` (format: docs/cli.md).
# identigraph resolve DIR --config DIR/linkage.toml --out OUT

[model]
default_phone_region = "GB"

[sources.crm]
id_column = "crm_id"
[sources.crm.fields]
title = "ignore"
first_name = "first_name"
last_name = "last_name"
dob = "date_of_birth"
gender = "gender"
email = "email"
phone = "phone"
address_line1 = "street_address"
town = "city"
postcode = "postcode"
created_at = "ignore"

[sources.web_accounts]
id_column = "account_id"
[sources.web_accounts.fields]
full_name = "full_name"
email = "email"
birth_date = "date_of_birth"
mobile = "phone"
street = "street_address"
city = "city"
zip = "postcode"
signup_ts = "ignore"

[sources.app_users]
id_column = "user_id"
[sources.app_users.fields]
given_name = "first_name"
family_name = "last_name"
dob = "date_of_birth"
email_address = "email"
phone = "phone"
postcode = "postcode"
loyalty_card = "identifier"
gender = "gender"
registered_at = "ignore"

[sources.store_loyalty]
id_column = "loyalty_no"
[sources.store_loyalty.fields]
loyalty_no = "identifier"
name = "full_name"
date_of_birth = "date_of_birth"
phone = "phone"
email = "email"
address = "street_address"
city = "city"
postcode = "postcode"
joined_on = "ignore"

[sources.callcenter]
id_column = "caller_ref"
[sources.callcenter.fields]
first = "first_name"
surname = "last_name"
dob = "date_of_birth"
phone = "phone"
email = "email"
post_code = "postcode"
call_date = "ignore"
reason = "ignore"
'''


def generate_dataset(config: GeneratorConfig, out_dir: Path,
                     progress: Callable[[int], None] | None = None) -> GenerationSummary:
    """Write every file of the data set to ``out_dir``; ``progress`` gets customers done."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    as_of = np.datetime64(config.as_of, "D")
    root = np.random.SeedSequence(config.seed)
    pools = build_pools(config.seed)
    products = make_products(np.random.default_rng(root.spawn(1)[0]))
    products.to_csv(out_dir / "products.csv", index=False)

    writers = {s: ChunkedTableWriter(out_dir / ch.SOURCE_FILES[s], CHANNEL_SCHEMAS[s]) for s in ch.SOURCES}
    orders_writer = ChunkedTableWriter(out_dir / "orders.parquet", ORDERS_SCHEMA)
    sessions_writer = ChunkedTableWriter(out_dir / "sessions.parquet", SESSIONS_SCHEMA)
    truth_records = ChunkedTableWriter(out_dir / "truth" / "records.parquet", TRUTH_RECORDS_SCHEMA)
    truth_customers = ChunkedTableWriter(out_dir / "truth" / "customers.parquet", TRUTH_CUSTOMERS_SCHEMA)
    labels_writer = ChunkedTableWriter(out_dir / "fraud_labels.csv", LABELS_SCHEMA)

    chunk_sizes = [min(config.chunk_size, config.customers - s) for s in range(0, config.customers, config.chunk_size)]
    fraud_counts = _fraud_counts(config, chunk_sizes)
    summary = GenerationSummary(out_dir=out_dir, customers=config.customers)
    id_counters = dict.fromkeys(ch.SOURCES, 1)
    order_counter = session_counter = 1
    customer_start = 0
    chunk_seeds = root.spawn(len(chunk_sizes) + 1)[1:]
    try:
        for size, n_fraud, chunk_seed in zip(chunk_sizes, fraud_counts, chunk_seeds):
            rng = np.random.default_rng(chunk_seed)
            people = generate_people(rng, config, pools, size - n_fraud, n_fraud, customer_start + 1)
            people, rings = plant_fraud(rng, people, n_fraud, summary.rings + 1, as_of)
            devices = people.devices.sort_values("owner_row", kind="stable").reset_index(drop=True)
            frame = people.frame
            plan = ch.assign_records(rng, frame, as_of)

            record_parts = []
            for source_index, source in enumerate(ch.SOURCES):
                selected = plan.source == source_index
                owners = plan.owner_row[selected]
                ids = _record_ids(source, id_counters[source], len(owners))
                id_counters[source] += len(owners)
                record_parts.append(pd.DataFrame({
                    "owner_row": owners, "source": source, "record_id": ids.astype(str).astype(object),
                    "created_at": plan.created_at[selected],
                }))
            records = pd.concat(record_parts, ignore_index=True)

            store_card_of_owner = (records[records["source"] == "store_loyalty"]
                                   .drop_duplicates("owner_row").set_index("owner_row")["record_id"])
            for source_index, source in enumerate(ch.SOURCES):
                selected = plan.source == source_index
                view = ch.RecordView.of(frame, plan.owner_row[selected], plan.uses_old_details[selected])
                ids = records.loc[records["source"] == source, "record_id"].to_numpy(object)
                if source == "web_accounts":
                    ids = ids.astype(np.int64)
                created = plan.created_at[selected]
                if source == "app_users":
                    cards = pd.Series(plan.owner_row[selected]).map(store_card_of_owner).to_numpy(object)
                    cards[rng.random(len(cards)) >= 0.6] = None
                    table = ch.render_app_users(view, ids, created, rng, cards)
                else:
                    table = getattr(ch, f"render_{source}")(view, ids, created, rng)
                writers[source].write(table)

            orders = make_orders(rng, frame, records, devices, products, as_of, order_counter)
            order_counter += len(orders)
            orders_writer.write(orders)
            sessions = make_sessions(rng, frame, records, devices, orders, as_of, session_counter)
            session_counter += len(sessions)
            sessions_writer.write(sessions)

            customer_ids = frame["customer_id"].to_numpy(object)
            truth_records.write(pd.DataFrame({
                "source": records["source"], "record_id": records["record_id"],
                "customer_id": customer_ids[records["owner_row"].to_numpy()],
            }))
            is_fraud = (frame["fraud_type"] != "none").to_numpy()
            household_head = customer_ids[frame["household_row"].to_numpy()]
            truth_customers.write(pd.DataFrame({
                "customer_id": customer_ids, "is_fraud": is_fraud,
                "fraud_type": frame["fraud_type"].to_numpy(object),
                "ring_id": np.where(frame["ring"] > 0, "R" + frame["ring"].astype(str).str.zfill(6), None),
                "household_id": np.array(["H" + h[1:] for h in household_head], dtype=object),
                "persona": frame["persona"].to_numpy(object), "locale": frame["locale"].to_numpy(object),
            }))
            labels_writer.write(_labels(rng, records, is_fraud, (frame["persona"] == "fraud").to_numpy(), as_of))

            summary.fraud_customers += int(is_fraud.sum())
            summary.rings += rings
            customer_start += size
            if progress is not None:
                progress(size)
    finally:
        for writer in [*writers.values(), orders_writer, sessions_writer, truth_records,
                       truth_customers, labels_writer]:
            writer.close()

    write_linkage_config(out_dir / "linkage.toml")
    summary.rows = {ch.SOURCE_FILES[s]: w.rows for s, w in writers.items()}
    summary.rows.update({"products.csv": len(products), "orders.parquet": orders_writer.rows,
                         "sessions.parquet": sessions_writer.rows, "fraud_labels.csv": labels_writer.rows,
                         "truth/records.parquet": truth_records.rows,
                         "truth/customers.parquet": truth_customers.rows})
    summary.seconds = time.perf_counter() - started
    return summary


def _labels(rng: np.random.Generator, records: pd.DataFrame, is_fraud: np.ndarray, busted: np.ndarray,
            as_of: np.datetime64) -> pd.DataFrame:
    """Investigated accounts: all records of caught fraudsters, one record of cleared customers."""
    n = len(is_fraud)
    rate = np.where(busted, FRAUD_LABEL_RATE["bust_out"], FRAUD_LABEL_RATE["cultivating"])
    caught = is_fraud & (rng.random(n) < rate)
    cleared = ~is_fraud & (rng.random(n) < LEGIT_LABEL_RATE)
    owner = records["owner_row"].to_numpy()
    fraud_rows = records[caught[owner]]
    legit_rows = records[cleared[owner]].drop_duplicates("owner_row")
    labelled = pd.concat([fraud_rows.assign(label="fraud"), legit_rows.assign(label="legit")], ignore_index=True)
    days_ago = rng.integers(0, 30, len(labelled)).astype("timedelta64[D]")
    return pd.DataFrame({
        "source": labelled["source"].to_numpy(object),
        "record_id": labelled["record_id"].to_numpy(object),
        "label": labelled["label"].to_numpy(object),
        "labelled_at": pd.Series(as_of - days_ago).dt.strftime("%Y-%m-%d").to_numpy(object),
    })
