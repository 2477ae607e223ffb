"""Vectorised formatting and error injection for channel records.

Each function takes arrays for the records of one channel and an ``rng``; random choices
are drawn as whole arrays first, so the output depends only on the seed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from identigraph.synthetic.pools import NICKNAMES

MONTH_ABBREVIATIONS = np.array(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], dtype=object)
STREET_ABBREVIATIONS = {"Street": "St", "Road": "Rd", "Avenue": "Ave", "Lane": "Ln", "Drive": "Dr",
                        "Court": "Ct", "Place": "Pl", "Square": "Sq", "Crescent": "Cres"}
JUNK_EMAILS = np.array(["test@test.com", "noemail@none.com", "na@na.com", "a@a.com"], dtype=object)
JUNK_PHONES = np.array(["0000000000", "1234567890", "9999999999", "0"], dtype=object)
JUNK_FIRST_NAMES = np.array(["Test", "Unknown", "N/A", "Xxx"], dtype=object)
JUNK_LAST_NAMES = np.array(["User", "Customer", "Test", "Unknown"], dtype=object)


def mask(rng: np.random.Generator, size: int, rate: float) -> np.ndarray:
    return rng.random(size) < rate


def blank(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Missing values at ``rate``."""
    out = values.copy()
    out[mask(rng, len(values), rate)] = None
    return out


def typos(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """One keyboard error (deletion, substitution, insertion, transposition) in a share of
    Latin-script values; the first letter is kept, as it usually is in real typing errors."""
    out = values.copy()
    chosen = np.flatnonzero(mask(rng, len(values), rate))
    kinds = rng.integers(0, 4, len(chosen))
    positions = rng.random(len(chosen))
    letters = rng.integers(97, 123, len(chosen))
    for i, kind, position, letter in zip(chosen, kinds, positions, letters):
        text = out[i]
        if not isinstance(text, str) or len(text) < 3 or not text.isascii():
            continue
        p = 1 + int(position * (len(text) - 2))
        if kind == 0:
            text = text[:p] + text[p + 1:]
        elif kind == 1:
            text = text[:p] + chr(letter) + text[p + 1:]
        elif kind == 2:
            text = text[:p] + chr(letter) + text[p:]
        else:
            text = text[:p - 1] + text[p] + text[p - 1] + text[p + 1:]
        out[i] = text
    return out


def nicknames(first: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    out = first.copy()
    for i in np.flatnonzero(mask(rng, len(first), rate)):
        options = NICKNAMES.get(out[i])
        if options:
            out[i] = options[int(rng.integers(0, len(options)))]
    return out


def swap(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, rate: float) -> tuple[np.ndarray, np.ndarray]:
    chosen = mask(rng, len(a), rate)
    a2, b2 = a.copy(), b.copy()
    a2[chosen], b2[chosen] = b[chosen], a[chosen]
    return a2, b2


def junk(values: np.ndarray, pool: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Placeholder values people type to get past a mandatory field."""
    out = values.copy()
    chosen = mask(rng, len(values), rate)
    out[chosen] = rng.choice(pool, chosen.sum())
    return out


def date_parts(dates: np.ndarray, rng: np.random.Generator, transpose_rate: float,
               error_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day); some have day and month transposed (where the day can be a
    month) or a digit wrong in the year or day."""
    series = pd.Series(dates)
    year = series.dt.year.to_numpy().copy()
    month = series.dt.month.to_numpy().copy()
    day = series.dt.day.to_numpy().copy()
    transpose = mask(rng, len(dates), transpose_rate) & (day <= 12) & (day != month)
    month[transpose], day[transpose] = day[transpose], month[transpose]
    error = mask(rng, len(dates), error_rate)
    year_error = error & (rng.random(len(dates)) < 0.5)
    year[year_error] += rng.choice([-1, 1, -10], year_error.sum())
    day_error = error & ~year_error & (day < 28)
    day[day_error] += 1
    return year, month, day


def format_date(year: np.ndarray, month: np.ndarray, day: np.ndarray, style: str,
                missing: np.ndarray | None = None) -> np.ndarray:
    y = pd.Series(year).astype(str)
    m = pd.Series(month).astype(str).str.zfill(2)
    d = pd.Series(day).astype(str).str.zfill(2)
    if style == "dmy_slash":
        out = d + "/" + m + "/" + y
    elif style == "iso":
        out = y + "-" + m + "-" + d
    elif style == "compact":
        out = y + m + d
    elif style == "text":
        out = pd.Series(day).astype(str) + " " + pd.Series(MONTH_ABBREVIATIONS[month - 1]) + " " + y
    else:
        raise ValueError(f"unknown date style {style}")
    values = out.to_numpy(object)
    if missing is not None:
        values[missing] = None
    return values


def phone_formats(country: np.ndarray, national: np.ndarray) -> pd.DataFrame:
    """Every way a channel writes a number: e164, national, international, digits."""
    c = pd.Series(country, dtype=object).fillna("")
    n = pd.Series(national, dtype=object).fillna("")
    gb_mobile = (c == "44") & n.str.startswith("7")
    gb_land = (c == "44") & ~gb_mobile
    us = c == "1"
    cn_land = (c == "86") & n.str.startswith("10")
    cn_mobile = (c == "86") & ~cn_land
    national_fmt = np.select(
        [gb_mobile, gb_land, us, cn_mobile, cn_land],
        ["0" + n.str[:4] + " " + n.str[4:],
         "0" + n.str[:2] + " " + n.str[2:6] + " " + n.str[6:],
         "(" + n.str[:3] + ") " + n.str[3:6] + "-" + n.str[6:],
         n.str[:3] + " " + n.str[3:7] + " " + n.str[7:],
         "0" + n.str[:2] + "-" + n.str[2:]],
        default="",
    )
    international = np.select(
        [gb_mobile, gb_land, us, cn_mobile | cn_land],
        ["+44 " + n.str[:4] + " " + n.str[4:],
         "+44 " + n.str[:2] + " " + n.str[2:6] + " " + n.str[6:],
         "+1 " + n.str[:3] + "-" + n.str[3:6] + "-" + n.str[6:],
         "+86 " + n.str[:3] + " " + n.str[3:7] + " " + n.str[7:]],
        default="",
    )
    digits = np.where(c == "44", "0" + n, np.where(cn_land, "0" + n, n))
    frame = pd.DataFrame({
        "e164": ("+" + c + n).to_numpy(object),
        "national": national_fmt.astype(object),
        "international": international.astype(object),
        "digits": digits.astype(object),
    })
    frame[(n == "").to_numpy()] = None
    return frame


def abbreviate_streets(streets: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    out = pd.Series(streets, dtype=object)
    chosen = mask(rng, len(streets), rate) & out.notna().to_numpy()
    replaced = out[chosen]
    for word, short in STREET_ABBREVIATIONS.items():
        replaced = replaced.str.replace(rf"\b{word}\b", short, regex=True)
    out[chosen] = replaced
    return out.to_numpy(object)


def email_variants(emails: np.ndarray, rng: np.random.Generator, case_rate: float = 0.0,
                   gmail_rate: float = 0.0, domain_typo_rate: float = 0.0) -> np.ndarray:
    """Upper-case letters, Gmail dot and plus-tag variants, mistyped domains."""
    out = pd.Series(emails, dtype=object)
    present = out.notna().to_numpy()
    upper = mask(rng, len(out), case_rate) & present
    out[upper] = out[upper].str.title()
    gmail = mask(rng, len(out), gmail_rate) & present & out.str.endswith("@gmail.com").fillna(False).to_numpy()
    local = out[gmail].str.split("@").str[0]
    tagged = rng.random(gmail.sum()) < 0.5
    local = np.where(tagged, local + "+shop", local.str.replace(".", "", regex=False) + "")
    undotted = ~tagged & (local == out[gmail].str.split("@").str[0].to_numpy())
    local = np.where(undotted, pd.Series(local).str[:2].to_numpy(object) + "." + pd.Series(local).str[2:].to_numpy(object), local)
    out[gmail] = pd.Series(local, index=out[gmail].index) + "@gmail.com"
    typo = mask(rng, len(out), domain_typo_rate) & present
    out[typo] = (out[typo].str.replace("gmail", "gmial", regex=False)
                 .str.replace("hotmail", "hotmial", regex=False).str.replace(".com", ".con", regex=False))
    return out.to_numpy(object)
