"""The five channel extracts: which customers appear where, and how each channel writes them.

Every channel has its own column names, id format, date and phone style, name layout and
error rates (docs/data.md tabulates them). ``assign_records`` decides which customer has
which records; ``render_<channel>`` turns those records into the channel's table.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from identigraph.synthetic import corruption as c

SOURCES = ("crm", "web_accounts", "app_users", "store_loyalty", "callcenter")
SOURCE_FILES = {
    "crm": "crm.csv", "web_accounts": "web_accounts.jsonl", "app_users": "app_users.parquet",
    "store_loyalty": "store_loyalty.csv", "callcenter": "callcenter.csv",
}
SOURCE_POPULARITY = np.array([0.70, 0.60, 0.50, 0.45, 0.25])
SOURCES_PER_CUSTOMER = ([1, 2, 3, 4, 5], [0.30, 0.30, 0.20, 0.12, 0.08])
# Rate of customers with a second account in the same channel (forgotten password, new e-mail).
DUPLICATE_ACCOUNT_RATE = 0.03
# Rate of rows a CRM export repeats verbatim; resolution must quarantine the repeat.
CRM_REPEATED_ROW_RATE = 0.0002


@dataclass(frozen=True)
class RecordPlan:
    """One row per source record: owner row in the chunk's people and the channel."""

    owner_row: np.ndarray
    source: np.ndarray  # index into SOURCES
    uses_old_details: np.ndarray  # bool: written before the customer moved / changed e-mail
    created_at: np.ndarray  # datetime64[s]


def assign_records(rng: np.random.Generator, people: pd.DataFrame, as_of: np.datetime64) -> RecordPlan:
    n = len(people)
    counts = rng.choice(SOURCES_PER_CUSTOMER[0], size=n, p=SOURCES_PER_CUSTOMER[1])
    fraud = (people["fraud_type"] != "none").to_numpy()
    counts[fraud] = rng.integers(1, 3, size=fraud.sum())
    popularity = np.tile(SOURCE_POPULARITY, (n, 1))
    popularity[fraud] = [0.05, 1.0, 1.0, 0.02, 0.02]  # fraudsters sign up online
    # Weighted sampling without replacement for all customers at once (Efraimidis-Spirakis keys).
    keys = -np.log(rng.random((n, len(SOURCES)))) / popularity
    order = np.argsort(keys, axis=1)
    take = np.arange(len(SOURCES))[None, :] < counts[:, None]
    owner = np.repeat(np.arange(n), counts)
    source = order[take]
    duplicate = np.flatnonzero(rng.random(n) < DUPLICATE_ACCOUNT_RATE)
    owner = np.concatenate([owner, duplicate])
    source = np.concatenate([source, rng.choice([1, 2], size=len(duplicate))])

    has_old = people[["old_email", "old_street"]].notna().any(axis=1).to_numpy()[owner]
    uses_old = has_old & (rng.random(len(owner)) < 0.4)
    first_seen = people["first_seen"].to_numpy().astype("datetime64[s]")[owner]
    span = (as_of.astype("datetime64[s]") - first_seen).astype(np.int64)
    offset = (rng.random(len(owner)) * np.where(uses_old, 0.3, 1.0) * span).astype(np.int64)
    created_at = first_seen + offset.astype("timedelta64[s]")
    order_by = np.lexsort((owner, source))
    return RecordPlan(owner[order_by], source[order_by], uses_old[order_by], created_at[order_by])


@dataclass(frozen=True)
class RecordView:
    """The true values a record was written from (current or old details chosen)."""

    people: pd.DataFrame  # rows aligned with the records

    @classmethod
    def of(cls, people: pd.DataFrame, owner_row: np.ndarray, uses_old: np.ndarray) -> "RecordView":
        view = people.iloc[owner_row].reset_index(drop=True)
        old_email = uses_old & view["old_email"].notna().to_numpy()
        view.loc[old_email, "email"] = view.loc[old_email, "old_email"]
        old_address = uses_old & view["old_street"].notna().to_numpy()
        for column in ("house_number", "street", "city", "postcode"):
            view.loc[old_address, column] = view.loc[old_address, f"old_{column}"]
        return cls(view)

    def column(self, name: str) -> np.ndarray:
        # A copy: renderers edit these arrays in place.
        return self.people[name].to_numpy(object, copy=True)


def _is_zh(view: RecordView) -> np.ndarray:
    return (view.people["locale"] == "zh_CN").to_numpy()


def _names(view: RecordView, rng: np.random.Generator, typo_rate: float, nickname_rate: float,
           romanise_zh: bool) -> tuple[np.ndarray, np.ndarray]:
    first, last = view.column("first_name"), view.column("last_name")
    if romanise_zh:
        zh = _is_zh(view)
        first[zh] = pd.Series(view.column("first_name_romanised")[zh]).str.capitalize().to_numpy(object)
        last[zh] = pd.Series(view.column("last_name_romanised")[zh]).str.capitalize().to_numpy(object)
    first = c.typos(c.nicknames(first, rng, nickname_rate), rng, typo_rate)
    last = c.typos(last, rng, typo_rate)
    return first, last


def _phone(view: RecordView, rng: np.random.Generator, landline_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(country, national) of the number a record holds: mobile, or the household landline."""
    national = view.column("mobile")
    landline = view.column("landline")
    use_landline = c.mask(rng, len(national), landline_rate) & pd.notna(landline)
    national = np.where(use_landline, landline, national)
    return view.column("phone_country"), national


def _date_parts(view: RecordView, rng: np.random.Generator):
    return c.date_parts(view.people["date_of_birth"].to_numpy(), rng, transpose_rate=0.03, error_rate=0.01)


def _street_line(view: RecordView) -> np.ndarray:
    return (view.people["house_number"].astype(str) + " " + view.people["street"].astype(str)).to_numpy(object)


def _timestamp_text(values: np.ndarray, fmt: str) -> np.ndarray:
    return pd.Series(values).dt.strftime(fmt).to_numpy(object)


def render_crm(view: RecordView, ids: np.ndarray, created_at: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(ids)
    first, last = _names(view, rng, typo_rate=0.02, nickname_rate=0.03, romanise_zh=False)
    first, last = c.swap(first, last, rng, 0.01)
    first = c.junk(first, c.JUNK_FIRST_NAMES, rng, 0.002)
    year, month, day = _date_parts(view, rng)
    gender = view.column("gender")
    title = np.where(gender == "F", rng.choice(np.array(["Mrs", "Ms", "Miss"], dtype=object), n), "Mr").astype(object)
    title[c.mask(rng, n, 0.03)] = "Dr"
    phones = c.phone_formats(*_phone(view, rng, landline_rate=0.2))
    frame = pd.DataFrame({
        "crm_id": ids,
        "title": c.blank(title, rng, 0.25),
        "first_name": first,
        "last_name": last,
        "dob": c.blank(c.format_date(year, month, day, "dmy_slash"), rng, 0.05),
        "gender": c.blank(gender, rng, 0.1),
        "email": c.blank(c.junk(c.email_variants(view.column("email"), rng, case_rate=0.15), c.JUNK_EMAILS, rng, 0.005), rng, 0.10),
        "phone": c.blank(c.junk(phones["national"].to_numpy(object), c.JUNK_PHONES, rng, 0.005), rng, 0.15),
        "address_line1": c.blank(_street_line(view), rng, 0.05),
        "town": c.blank(view.column("city"), rng, 0.08),
        "postcode": c.blank(view.column("postcode"), rng, 0.05),
        "created_at": _timestamp_text(created_at, "%Y-%m-%d %H:%M:%S"),
    })
    repeated = frame[c.mask(rng, n, CRM_REPEATED_ROW_RATE)]
    return pd.concat([frame, repeated], ignore_index=True) if len(repeated) else frame


def render_web_accounts(view: RecordView, ids: np.ndarray, created_at: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(ids)
    first, last = _names(view, rng, typo_rate=0.03, nickname_rate=0.12, romanise_zh=False)
    zh = _is_zh(view)
    full = pd.Series(first, dtype=object) + " " + pd.Series(last, dtype=object)
    full[zh] = (pd.Series(last[zh], dtype=object) + pd.Series(first[zh], dtype=object)).to_numpy(object)
    comma = c.mask(rng, n, 0.05) & ~zh
    full[comma] = (pd.Series(last[comma], dtype=object) + ", " + pd.Series(first[comma], dtype=object)).to_numpy(object)
    lower = c.mask(rng, n, 0.10)
    full[lower] = full[lower].str.lower()
    year, month, day = _date_parts(view, rng)
    phones = c.phone_formats(*_phone(view, rng, landline_rate=0.0))
    postcode = pd.Series(view.column("postcode"), dtype=object)
    squashed = c.mask(rng, n, 0.3)
    postcode[squashed] = postcode[squashed].str.replace(" ", "", regex=False).str.lower()
    return pd.DataFrame({
        "account_id": ids,
        "full_name": full.to_numpy(object),
        "email": c.junk(c.email_variants(view.column("email"), rng, gmail_rate=0.10), c.JUNK_EMAILS, rng, 0.005),
        "birth_date": c.blank(c.format_date(year, month, day, "iso"), rng, 0.10),
        "mobile": c.blank(phones["e164"].to_numpy(object), rng, 0.20),
        "street": c.blank(c.abbreviate_streets(_street_line(view), rng, 0.4), rng, 0.30),
        "city": c.blank(view.column("city"), rng, 0.30),
        "zip": c.blank(postcode.to_numpy(object), rng, 0.25),
        "signup_ts": _timestamp_text(created_at, "%Y-%m-%dT%H:%M:%SZ"),
    })


def render_app_users(view: RecordView, ids: np.ndarray, created_at: np.ndarray, rng: np.random.Generator,
                     loyalty_cards: np.ndarray) -> pd.DataFrame:
    n = len(ids)
    first, last = _names(view, rng, typo_rate=0.03, nickname_rate=0.12, romanise_zh=False)
    zh = _is_zh(view)
    romanised = zh & c.mask(rng, n, 0.10)
    first[romanised] = pd.Series(view.column("first_name_romanised")[romanised]).str.capitalize().to_numpy(object)
    last[romanised] = pd.Series(view.column("last_name_romanised")[romanised]).str.capitalize().to_numpy(object)
    first, last = c.swap(first, last, rng, 0.02)
    year, month, day = _date_parts(view, rng)
    dob = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}), errors="coerce").dt.date.to_numpy(object)
    dob[c.mask(rng, n, 0.15)] = None
    phones = c.phone_formats(*_phone(view, rng, landline_rate=0.0))
    gender = pd.Series(view.column("gender")).map({"F": "female", "M": "male"}).to_numpy(object)
    cards = c.junk(loyalty_cards, np.array(["000000000000"], dtype=object), rng, 0.005)
    return pd.DataFrame({
        "user_id": ids,
        "given_name": first,
        "family_name": last,
        "dob": dob,
        "email_address": c.blank(c.junk(view.column("email"), c.JUNK_EMAILS, rng, 0.005), rng, 0.05),
        "phone": c.blank(phones["international"].to_numpy(object), rng, 0.05),
        "postcode": c.blank(view.column("postcode"), rng, 0.20),
        "loyalty_card": cards,
        "gender": c.blank(gender, rng, 0.4),
        "registered_at": created_at.astype("datetime64[ms]"),
    })


def render_store_loyalty(view: RecordView, ids: np.ndarray, created_at: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    first, last = _names(view, rng, typo_rate=0.04, nickname_rate=0.05, romanise_zh=True)
    name = (pd.Series(first, dtype=object) + " " + pd.Series(last, dtype=object)).str.upper()
    year, month, day = _date_parts(view, rng)
    phones = c.phone_formats(*_phone(view, rng, landline_rate=0.3))
    address = pd.Series(c.abbreviate_streets(_street_line(view), rng, 0.3), dtype=object).str.upper()
    return pd.DataFrame({
        "loyalty_no": ids,
        "name": name.to_numpy(object),
        "date_of_birth": c.blank(c.format_date(year, month, day, "compact"), rng, 0.10),
        "phone": c.blank(c.junk(phones["digits"].to_numpy(object), c.JUNK_PHONES, rng, 0.01), rng, 0.20),
        "email": c.blank(view.column("email"), rng, 0.55),
        "address": c.blank(address.to_numpy(object), rng, 0.10),
        "city": c.blank(view.column("city"), rng, 0.15),
        "postcode": c.blank(view.column("postcode"), rng, 0.10),
        "joined_on": _timestamp_text(created_at, "%Y-%m-%d"),
    })


CALL_REASONS = np.array(["billing", "delivery", "returns", "account", "complaint", "product question"], dtype=object)


def render_callcenter(view: RecordView, ids: np.ndarray, created_at: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(ids)
    first, last = _names(view, rng, typo_rate=0.08, nickname_rate=0.15, romanise_zh=True)
    first, last = c.swap(first, last, rng, 0.02)
    year, month, day = _date_parts(view, rng)
    phones = c.phone_formats(*_phone(view, rng, landline_rate=0.25))
    phone = np.where(c.mask(rng, n, 0.5), phones["national"], pd.Series(phones["national"]).str.replace(" ", "-", regex=False))
    return pd.DataFrame({
        "caller_ref": ids,
        "first": first,
        "surname": last,
        "dob": c.blank(c.format_date(year, month, day, "text"), rng, 0.35),
        "phone": c.junk(phone.astype(object), c.JUNK_PHONES, rng, 0.01),
        "email": c.blank(c.email_variants(view.column("email"), rng, domain_typo_rate=0.04), rng, 0.45),
        "post_code": c.blank(view.column("postcode"), rng, 0.40),
        "call_date": _timestamp_text(created_at, "%d/%m/%Y %H:%M"),
        "reason": rng.choice(CALL_REASONS, n),
    })
