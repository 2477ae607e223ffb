"""The synthetic generator: files, truth consistency, realism and determinism."""
from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest

from identigraph.resolution.io import read_table
from identigraph.synthetic import GeneratorConfig, generate_dataset
from identigraph.synthetic.channels import SOURCE_FILES

ID_COLUMNS = {"crm": "crm_id", "web_accounts": "account_id", "app_users": "user_id",
              "store_loyalty": "loyalty_no", "callcenter": "caller_ref"}
EXPECTED_FILES = [*SOURCE_FILES.values(), "products.csv", "orders.parquet", "sessions.parquet",
                  "fraud_labels.csv", "linkage.toml", "truth/records.parquet", "truth/customers.parquet"]


@pytest.fixture(scope="module")
def channel_records(small_dataset) -> pd.DataFrame:
    parts = []
    for source, filename in SOURCE_FILES.items():
        frame = read_table(small_dataset / filename)
        parts.append(pd.DataFrame({"source": source, "record_id": frame[ID_COLUMNS[source]].astype(str)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def truth(small_dataset):
    return (pd.read_parquet(small_dataset / "truth" / "records.parquet"),
            pd.read_parquet(small_dataset / "truth" / "customers.parquet"))


def test_writes_every_file(small_dataset):
    for name in EXPECTED_FILES:
        assert (small_dataset / name).is_file(), name
        assert (small_dataset / name).stat().st_size > 0, name


def test_every_source_record_has_exactly_one_true_customer(channel_records, truth):
    records, customers = truth
    assert not records.duplicated(["source", "record_id"]).any()
    distinct_channel = channel_records.drop_duplicates()
    merged = distinct_channel.merge(records, on=["source", "record_id"], how="left", validate="one_to_one")
    assert merged["customer_id"].notna().all()
    assert len(distinct_channel) == len(records)
    assert set(records["customer_id"]) == set(customers["customer_id"])
    assert customers["customer_id"].is_unique and len(customers) == 2_000


def test_customers_appear_in_one_to_five_channels(truth):
    records, _ = truth
    channels = records.groupby("customer_id")["source"].nunique()
    assert channels.min() >= 1 and channels.max() <= 5
    assert set(channels.unique()) == {1, 2, 3, 4, 5}


def test_fraud_labels_are_a_subset_of_the_truth(small_dataset, truth):
    records, customers = truth
    labels = pd.read_csv(small_dataset / "fraud_labels.csv", dtype=str)
    assert set(labels["label"]) == {"fraud", "legit"}
    labelled = labels.merge(records, on=["source", "record_id"], how="left", validate="many_to_one")
    assert labelled["customer_id"].notna().all()
    is_fraud = labelled.merge(customers, on="customer_id")["is_fraud"]
    assert is_fraud[labelled["label"] == "fraud"].all()
    assert not is_fraud[labelled["label"] == "legit"].any()
    fraud_customers = customers[customers["is_fraud"]]
    assert 0 < labelled.loc[labelled["label"] == "fraud", "customer_id"].nunique() < len(fraud_customers)


def test_fraud_rate_and_rings(truth):
    _, customers = truth
    assert customers["is_fraud"].sum() == 40  # 2% of 2,000
    rings = customers.dropna(subset=["ring_id"]).groupby("ring_id").size()
    assert len(rings) >= 2 and rings.min() >= 3


def test_ring_members_share_devices(small_dataset, truth):
    records, customers = truth
    sessions = pd.read_parquet(small_dataset / "sessions.parquet")
    owner = sessions.merge(records, on=["source", "record_id"]).merge(customers, on="customer_id")
    ring_devices = owner.dropna(subset=["ring_id"]).groupby("device_id")["customer_id"].nunique()
    legit_devices = owner[~owner["is_fraud"]].groupby("device_id")["customer_id"].nunique()
    assert ring_devices.max() >= 3
    assert ring_devices.mean() > 2 * legit_devices.mean()


def test_channel_files_do_not_reveal_the_truth(small_dataset, truth):
    _, customers = truth
    true_ids = set(customers["customer_id"])
    for filename in SOURCE_FILES.values():
        frame = read_table(small_dataset / filename)
        for column in frame.columns:
            assert not set(frame[column].dropna()) & true_ids, (filename, column)
        assert not {"customer_id", "is_fraud", "ring_id"} & set(frame.columns)


def test_phones_are_e164_parseable(small_dataset):
    web = read_table(small_dataset / "web_accounts.jsonl")["mobile"].dropna()
    crm = read_table(small_dataset / "crm.csv")["phone"].dropna()
    assert web.str.match(r"^\+\d{10,13}$").all()
    junk = {"0000000000", "1234567890", "9999999999", "0"}
    valid = [phonenumbers.is_valid_number(phonenumbers.parse(p)) for p in web]
    assert np.mean(valid) > 0.98
    # National formats need the region; the UK numbers carry the trunk 0.
    uk = crm[crm.str.startswith("07") & ~crm.isin(junk)]
    assert len(uk) > 50
    assert np.mean([phonenumbers.is_valid_number(phonenumbers.parse(p, "GB")) for p in uk]) > 0.98


def test_names_span_cultures_and_quirks(small_dataset):
    crm = read_table(small_dataset / "crm.csv")
    store = read_table(small_dataset / "store_loyalty.csv")
    cjk = crm["last_name"].dropna().str.contains(r"[\u4e00-\u9fff]")
    assert 0.05 < cjk.mean() < 0.4
    assert store["name"].dropna().str.isupper().mean() > 0.95
    assert crm["dob"].dropna().str.match(r"^\d{2}/\d{2}/\d{4}$").all()
    assert store["date_of_birth"].dropna().str.match(r"^\d{8}$").all()
    junk = crm["email"].isin(["test@test.com", "noemail@none.com", "na@na.com", "a@a.com"]).sum()
    assert junk >= 1
    callcenter = read_table(small_dataset / "callcenter.csv")
    assert 0.25 < callcenter["dob"].isna().mean() < 0.45


def test_events_reference_existing_records_and_products(small_dataset, truth):
    records, _ = truth
    products = pd.read_csv(small_dataset / "products.csv")
    orders = pd.read_parquet(small_dataset / "orders.parquet")
    sessions = pd.read_parquet(small_dataset / "sessions.parquet")
    assert products["product_id"].is_unique
    assert orders["order_id"].is_unique and sessions["session_id"].is_unique
    assert orders["product_id"].isin(products["product_id"]).all()
    for events in (orders, sessions):
        joined = events.merge(records, on=["source", "record_id"], how="left")
        assert joined["customer_id"].notna().all()
    assert set(sessions["source"]) <= {"web_accounts", "app_users"}
    online = orders["channel"].isin(["web", "app"])
    assert orders.loc[online, "device_id"].notna().all() and orders.loc[~online, "device_id"].isna().all()
    assert (orders["amount"] > 0).all() and (orders["quantity"] >= 1).all()


def test_linkage_config_maps_every_channel_column(small_dataset):
    config = tomllib.loads((small_dataset / "linkage.toml").read_text())
    assert set(config["sources"]) == set(SOURCE_FILES)
    for source, filename in SOURCE_FILES.items():
        columns = set(read_table(small_dataset / filename).columns)
        section = config["sources"][source]
        assert section["id_column"] in columns
        assert set(section["fields"]) == columns - {section["id_column"]} | (
            {section["id_column"]} & set(section["fields"]))


def _digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.suffix != ".parquet"} | {
        str(p.relative_to(directory)): hashlib.sha256(pd.read_parquet(p).to_csv().encode()).hexdigest()
        for p in sorted(directory.rglob("*.parquet"))}


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    config = GeneratorConfig(customers=1_500, seed=3, chunk_size=1_000)
    generate_dataset(config, tmp_path / "a")
    generate_dataset(config, tmp_path / "b")
    generate_dataset(GeneratorConfig(customers=1_500, seed=4, chunk_size=1_000), tmp_path / "c")
    a, b, c = (_digest(tmp_path / name) for name in "abc")
    assert a == b
    assert a["crm.csv"] != c["crm.csv"]


@pytest.mark.parametrize("kwargs", [{"customers": 0}, {"customers": 10, "fraud_rate": 0.9},
                                    {"customers": 10, "chunk_size": 5}])
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        GeneratorConfig(**kwargs)
