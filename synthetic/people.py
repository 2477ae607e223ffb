"""True customers of one chunk: identity, household, contact details, persona, fraud role.

Everything is drawn as whole numpy arrays; the few per-string steps (e-mail local parts)
run once per customer, not per record.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from identigraph.synthetic.config import LOCALES, GeneratorConfig
from identigraph.synthetic.pools import EMAIL_DOMAINS, US_AREA_CODES, LocalePools

PERSONAS = ("loyal_high_value", "regular", "bargain_hunter", "lapsed", "new", "occasional")
PERSONA_WEIGHTS = (0.10, 0.30, 0.15, 0.15, 0.10, 0.20)
# np.where(mask, values, MISSING): None where the mask is off, in an object array.
MISSING = np.array(None, dtype=object)
DEVICE_TYPES = np.array(["ios", "android", "windows", "macos", "tablet"], dtype=object)


@dataclass(frozen=True)
class ChunkPeople:
    """One row per true customer; ``frame`` columns are documented in docs/data.md."""

    frame: pd.DataFrame
    # customer row -> list of device ids, as a flat (owner_row, device_id, device_type, ip) table
    devices: pd.DataFrame


def _digits(rng: np.random.Generator, size: int, width: int) -> np.ndarray:
    """Random digit strings of a fixed width."""
    return pd.Series(rng.integers(0, 10**width, size=size)).astype(str).str.zfill(width).to_numpy(object)


def _phones(rng: np.random.Generator, locales: np.ndarray, landline: bool) -> pd.DataFrame:
    """National significant numbers with country codes; formatting happens per channel."""
    n = len(locales)
    country = np.where(locales == "en_GB", "44", np.where(locales == "en_US", "1", "86")).astype(object)
    if landline:
        gb = "20" + rng.choice(np.array(["3", "7", "8"], dtype=object), n) + _digits(rng, n, 7)
        cn = "10" + rng.choice(np.array(["5", "6", "8"], dtype=object), n) + _digits(rng, n, 7)
    else:
        gb = "7" + rng.choice(np.array(["4", "5", "7", "8", "9"], dtype=object), n) + _digits(rng, n, 8)
        cn = "1" + rng.choice(np.array(["3", "5", "8"], dtype=object), n) + _digits(rng, n, 9)
    exchange = rng.integers(201, 1000, size=n)
    exchange = np.where((exchange % 100 == 11) | (exchange == 555), exchange + 1, exchange)
    us = (rng.choice(US_AREA_CODES, n).astype(str).astype(object)
          + exchange.astype(str).astype(object) + _digits(rng, n, 4))
    national = np.where(locales == "en_GB", gb, np.where(locales == "en_US", us, cn)).astype(object)
    return pd.DataFrame({"country": country, "national": national})


def _email_local_parts(rng: np.random.Generator, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    pattern = rng.integers(0, 6, size=len(first))
    number = rng.integers(1, 999, size=len(first))
    parts = np.empty(len(first), dtype=object)
    for i, (f, last_name, p, k) in enumerate(zip(first, last, pattern, number)):
        if p == 0:
            parts[i] = f"{f}.{last_name}"
        elif p == 1:
            parts[i] = f"{f}{last_name}{k}"
        elif p == 2:
            parts[i] = f"{f[0]}{last_name}{k}"
        elif p == 3:
            parts[i] = f"{f}_{last_name}{k % 100}"
        elif p == 4:
            parts[i] = f"{last_name}.{f}{k}"
        else:
            parts[i] = f"{f}{k}"
    return parts


def _emails(rng: np.random.Generator, locales: np.ndarray, first_rom: np.ndarray,
            last_rom: np.ndarray, salt: np.ndarray) -> np.ndarray:
    local = _email_local_parts(rng, first_rom, last_rom)
    # Distinct people can draw the same pattern; a per-customer salt keeps addresses unique.
    duplicated = pd.Series(local).duplicated(keep="first").to_numpy()
    local[duplicated] = local[duplicated] + salt[duplicated].astype(str).astype(object)
    domains = np.empty(len(locales), dtype=object)
    for locale in LOCALES:
        mask = locales == locale
        names, weights = EMAIL_DOMAINS[locale]
        domains[mask] = rng.choice(np.array(names, dtype=object), mask.sum(), p=weights)
    return local + "@" + domains


def _household_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Household number per customer; about a quarter live with another customer."""
    sizes = rng.choice([1, 2, 3, 4], size=n, p=[0.80, 0.13, 0.05, 0.02])
    household = np.repeat(np.arange(len(sizes)), sizes)[:n]
    return household


def generate_people(rng: np.random.Generator, config: GeneratorConfig, pools: dict[str, LocalePools],
                    n_legit: int, n_fraud: int, first_customer_number: int) -> ChunkPeople:
    n = n_legit + n_fraud
    as_of = np.datetime64(config.as_of, "D")
    locale_names = np.array(list(config.locale_weights), dtype=object)
    locales = rng.choice(locale_names, n, p=np.array(list(config.locale_weights.values())))
    gender = rng.choice(np.array(["F", "M"], dtype=object), n)

    # Households: members share the head's locale and address, usually the surname and
    # sometimes a landline. Fraudulent identities live alone.
    household = _household_ids(rng, n)
    head = pd.Series(np.arange(n)).groupby(household).transform("min").to_numpy()
    fraud_rows = np.arange(n) >= n_legit
    is_member = (head != np.arange(n)) & ~fraud_rows & ~fraud_rows[head]
    head = np.where(is_member, head, np.arange(n))
    locales[is_member] = locales[head[is_member]]

    first = np.empty(n, dtype=object)
    first_rom = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    last_rom = np.empty(n, dtype=object)
    street = np.empty(n, dtype=object)
    city = np.empty(n, dtype=object)
    postcode = np.empty(n, dtype=object)
    # Where people lived before a move: another address of the same locale.
    old_source = np.arange(n)
    for locale in LOCALES:
        pool = pools[locale]
        for g, first_pool in (("F", pool.first_female), ("M", pool.first_male)):
            mask = (locales == locale) & (gender == g)
            idx = first_pool.sample(rng, mask.sum())
            first[mask], first_rom[mask] = first_pool.values[idx], first_pool.romanised[idx]
        mask = locales == locale
        k = mask.sum()
        idx = pool.last.sample(rng, k)
        last[mask], last_rom[mask] = pool.last.values[idx], pool.last.romanised[idx]
        street[mask] = pool.street.values[pool.street.sample(rng, k)]
        city[mask] = pool.city.values[pool.city.sample(rng, k)]
        postcode[mask] = pool.postcode.values[pool.postcode.sample(rng, k)]
        old_source[mask] = rng.permutation(np.flatnonzero(mask))
    house_number = rng.integers(1, 250, size=n)

    dob = np.datetime64("1940-01-01") + rng.integers(0, 365 * 66, size=n).astype("timedelta64[D]")

    for column in (street, city, postcode):
        column[is_member] = column[head[is_member]]
    house_number[is_member] = house_number[head[is_member]]
    shares_surname = is_member & (rng.random(n) < 0.7)
    last[shares_surname] = last[head[shares_surname]]
    last_rom[shares_surname] = last_rom[head[shares_surname]]
    household_size = np.bincount(head, minlength=n)[head]

    mobile = _phones(rng, locales, landline=False)
    landline = _phones(rng, locales, landline=True)
    has_landline = rng.random(n) < 0.35
    shared_line = is_member & has_landline[head]
    landline.loc[shared_line, ["country", "national"]] = landline.loc[head[shared_line], ["country", "national"]].to_numpy()
    has_landline |= shared_line

    customer_number = first_customer_number + np.arange(n)
    email = _emails(rng, locales, first_rom, last_rom, customer_number)
    # People change e-mail and move house; older records keep the old values.
    changed_email = rng.random(n) < 0.15
    old_email = np.where(changed_email, _emails(rng, locales, first_rom, last_rom, customer_number + 7), MISSING)
    moved = rng.random(n) < 0.12
    old_street = np.where(moved, street[old_source], MISSING)
    old_city = np.where(moved, city[old_source], MISSING)
    old_postcode = np.where(moved, postcode[old_source], MISSING)
    old_house_number = np.where(moved, rng.integers(1, 250, size=n), 0)

    persona = rng.choice(np.array(PERSONAS, dtype=object), n, p=PERSONA_WEIGHTS)
    tenure_days = rng.integers(30, 365 * 8, size=n)
    persona_new = persona == "new"
    tenure_days[persona_new] = rng.integers(5, 120, size=persona_new.sum())

    frame = pd.DataFrame({
        "customer_id": pd.Series(customer_number).map("C{:08d}".format).to_numpy(object),
        "locale": locales, "gender": gender,
        "first_name": first, "first_name_romanised": first_rom,
        "last_name": last, "last_name_romanised": last_rom,
        "date_of_birth": dob,
        "email": email, "old_email": old_email,
        "phone_country": mobile["country"].to_numpy(object), "mobile": mobile["national"].to_numpy(object),
        "landline": np.where(has_landline, landline["national"].to_numpy(object), None),
        "house_number": house_number, "street": street, "city": city, "postcode": postcode,
        "old_house_number": old_house_number, "old_street": old_street,
        "old_city": old_city, "old_postcode": old_postcode,
        "household_row": head, "household_size": household_size,
        "persona": persona, "first_seen": as_of - tenure_days.astype("timedelta64[D]"),
        "fraud_type": np.where(fraud_rows, "lone", "none").astype(object),
        "ring": np.full(n, -1),
    })
    devices = _devices(rng, frame)
    return ChunkPeople(frame, devices)


def _devices(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    """1-3 devices each; a third of households also share one family device."""
    n = len(frame)
    count = rng.choice([1, 2, 3], size=n, p=[0.5, 0.35, 0.15])
    owner = np.repeat(np.arange(n), count)
    household_ip = _ips(rng, n)[frame["household_row"].to_numpy()]
    devices = pd.DataFrame({
        "owner_row": owner,
        "device_id": _hex_ids(rng, len(owner)),
        "device_type": rng.choice(DEVICE_TYPES, len(owner), p=[0.3, 0.3, 0.2, 0.1, 0.1]),
        "ip": household_ip[owner],
    })
    heads = frame["household_row"].to_numpy()
    members = np.flatnonzero((heads != np.arange(n)) & (rng.random(n) < 0.33))
    family = devices.drop_duplicates("owner_row").set_index("owner_row").loc[heads[members]]
    shared = family.reset_index(drop=True).assign(owner_row=members)
    return pd.concat([devices, shared], ignore_index=True)


def _hex_ids(rng: np.random.Generator, size: int) -> np.ndarray:
    raw = rng.integers(0, 2**63, size=size, dtype=np.int64)
    return pd.Series(raw).map("{:016x}".format).to_numpy(object)


def _ips(rng: np.random.Generator, size: int) -> np.ndarray:
    # Public-looking unicast addresses: first octet avoids 0, 10, 127, 172 and 192 blocks.
    first = rng.choice(np.array([23, 31, 45, 51, 62, 77, 81, 86, 92, 104, 109, 151, 176, 185, 203, 212, 217]), size)
    rest = rng.integers(0, 256, size=(size, 3))
    table = pd.DataFrame({"a": first, "b": rest[:, 0], "c": rest[:, 1], "d": rest[:, 2]}).astype(str)
    return (table["a"] + "." + table["b"] + "." + table["c"] + "." + table["d"]).to_numpy(object)
