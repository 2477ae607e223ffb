"""Standardisers, one per semantic type, over whole pyarrow arrays.

Fast paths use Arrow's C++ kernels (case folding, NFKC, regex). Work that needs Python
(romanising CJK, transliteration, phone country codes) runs once per *distinct* value via
dictionary encoding, so its cost follows the number of distinct values, not of records.
Values recognised as junk (test e-mails, repeated digits, placeholder names) become null:
they are missing information, not evidence.
"""
from __future__ import annotations

import gettext
import os
import re
from collections.abc import Callable, Sequence
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pycountry
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, country_code_for_region
from pypinyin import lazy_pinyin
from unidecode import unidecode

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Chinese surnames of two characters; all others are one character.
COMPOUND_SURNAMES = frozenset("欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 钟离 端木 独孤 南宫 西门".split())
JUNK_NAMES = frozenset({"test", "testing", "unknown", "n a", "na", "xxx", "xx", "x", "none", "null", "nil",
                        "user", "customer", "asdf", "abc", "no name", "noname", "anonymous", "dummy", "tbc"})
JUNK_EMAIL_LOCALS = frozenset({"test", "noemail", "none", "na", "no", "nomail", "a", "abc", "asdf", "null",
                               "unknown", "xxx", "example", "email", "noreply", "no-reply"})
JUNK_EMAIL_DOMAINS = frozenset({"test.com", "example.com", "example.org", "none.com", "na.com", "a.com",
                                "noemail.com", "nomail.com", "test.test", "email.email"})
EMAIL_DOMAIN_TYPOS = {"gmial.com": "gmail.com", "gmai.com": "gmail.com", "gamil.com": "gmail.com",
                      "gmail.co": "gmail.com", "gnail.com": "gmail.com", "googlemail.com": "gmail.com",
                      "hotmial.com": "hotmail.com", "hotmal.com": "hotmail.com", "hotmai.com": "hotmail.com",
                      "hotmial.co.uk": "hotmail.co.uk", "yaho.com": "yahoo.com", "yahooo.com": "yahoo.com",
                      "outlok.com": "outlook.com", "iclod.com": "icloud.com"}
# Providers that deliver "name+tag@" to "name@"; Gmail also ignores dots in the local part.
PLUS_ADDRESSING = frozenset({"gmail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com",
                             "icloud.com", "me.com", "protonmail.com", "proton.me", "fastmail.com"})
JUNK_PHONE_DIGITS = frozenset({"123456789", "1234567890", "0123456789", "987654321", "9876543210",
                               "12345678", "01234567890"})
STREET_ABBREVIATIONS = {"st": "street", "rd": "road", "ave": "avenue", "av": "avenue", "ln": "lane",
                        "dr": "drive", "ct": "court", "pl": "place", "sq": "square", "cres": "crescent",
                        "blvd": "boulevard", "blv": "boulevard", "hwy": "highway", "mt": "mount", "pk": "park", "gdns": "gardens",
                        "cl": "close", "ter": "terrace", "terr": "terrace", "sta": "station", "apt": "apartment"}
GENDERS = {"m": "m", "male": "m", "man": "m", "mr": "m", "boy": "m",
           "f": "f", "female": "f", "woman": "f", "mrs": "f", "ms": "f", "miss": "f", "girl": "f"}
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%Y%m%d", "%d %b %Y", "%d-%m-%Y", "%d.%m.%Y",
                "%Y/%m/%d", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y", "%m-%d-%Y")
COUNTRY_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


def as_string_array(values) -> pa.Array:
    array = pa.array(values, type=pa.string(), from_pandas=True) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.string())


def map_distinct(array: pa.Array, function: Callable[[str], str | None]) -> pa.Array:
    """``function`` applied once per distinct non-null value."""
    encoded = pc.dictionary_encode(array)
    mapped = pa.array([function(v) for v in encoded.dictionary.to_pylist()], type=pa.string())
    return pc.take(mapped, encoded.indices)


# Below this many values, clean_text works per character in Python: RE2 compiles the Unicode
# classes afresh on every call (about 1.5 ms), which is most of matching one record.
SMALL_ARRAY = 64
LETTERS_NUMBERS_SPACES = r"[^\p{L}\p{N}\s]"
RE2_SPACES = re.compile(r"[\t\n\f\r ]+")  # RE2's \s: ASCII whitespace only


@lru_cache(maxsize=1)
def _kept_by_re2() -> bytearray:
    """Per code point, 1 where ``LETTERS_NUMBERS_SPACES`` leaves it: RE2 itself classifies
    every character once (Python's own Unicode tables are older than RE2's)."""
    points = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    text = "".join(map(chr, points))
    kept_text = pc.replace_substring_regex(pa.array([text]), pattern=LETTERS_NUMBERS_SPACES, replacement=" ")[0].as_py()
    table = bytearray(0x110000)
    for cp, before, after in zip(points, text, kept_text):
        table[cp] = before == after
    return table


def _letters_and_numbers_spaced(text: str) -> str:
    """What the two regular expressions of ``clean_text`` and its trim do, per character."""
    kept = _kept_by_re2()
    spaced = "".join(ch if kept[ord(ch)] else " " for ch in text)
    return RE2_SPACES.sub(" ", spaced).strip(" ")


def clean_text(array: pa.Array) -> pa.Array:
    """NFKC, case folded, punctuation to spaces, whitespace collapsed; empty becomes null."""
    array = pc.utf8_lower(pc.utf8_normalize(as_string_array(array), form="NFKC"))
    if len(array) <= SMALL_ARRAY:
        spaced = [None if v is None else _letters_and_numbers_spaced(v) for v in array.to_pylist()]
        array = pa.array(spaced, type=pa.string())
    else:
        # RE2's \w is ASCII-only: Unicode classes keep accented and CJK letters.
        array = pc.replace_substring_regex(array, pattern=LETTERS_NUMBERS_SPACES, replacement=" ")
        array = pc.utf8_trim_whitespace(pc.replace_substring_regex(array, pattern=r"\s+", replacement=" "))
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def _null_where(array: pa.Array, mask) -> pa.Array:
    return pc.if_else(mask, pa.scalar(None, pa.string()), array)


def romanise(text: str | None) -> str | None:
    if text is None:
        return None
    if CJK.search(text):
        return "".join(lazy_pinyin(text)).lower()
    return unidecode(text).lower()


def name_key(array) -> pa.Array:
    """Comparison key of a name: cleaned, romanised (CJK to pinyin), ASCII, no spaces or hyphens."""
    cleaned = clean_text(array)
    cleaned = _null_where(cleaned, pc.is_in(cleaned, value_set=pa.array(sorted(JUNK_NAMES))))
    keys = map_distinct(cleaned, lambda v: re.sub(r"[^a-z]", "", romanise(v) or "") or None)
    return keys


def name_display(array) -> pa.Array:
    """The name as people write it: NFKC, single spaces, junk removed; case kept."""
    array = pc.utf8_normalize(as_string_array(array), form="NFKC")
    array = pc.utf8_trim_whitespace(pc.replace_substring_regex(array, pattern=r"\s+", replacement=" "))
    lowered = clean_text(array)
    return _null_where(array, pc.or_kleene(pc.is_null(lowered), pc.is_in(lowered, value_set=pa.array(sorted(JUNK_NAMES)))))


# Words around a name that say nothing of who someone is: titles and honorifics before it,
# generational suffixes, ordinals and post-nominal letters after it. Compared after folding
# case and dropping dots ("Dr.", "Jr.").
NAME_PREFIXES = frozenset("""mr mrs ms miss mx dr prof professor sir dame lady lord rev reverend fr father sister
    brother capt captain col colonel gen general maj major lt hon herr frau fräulein mme mlle madame monsieur
    sr sra señor señora don dona doña rabbi imam sheikh shaikh
    king queen prince princess emperor empress tsar czar tsarina sultan pope cardinal bishop archbishop
    duke duchess count countess baron baroness marquess marchioness viscount viscountess archduke archduchess
    graf gräfin freiherr fürst herzog comte comtesse duc duchesse conte contessa""".split())
# (Not "Earl", "Marquis", "Rey" or "Reina": given names too; not "St" or "Saint": "St. Clair"
# is a family name.) After a sovereign's title the one name left is a given name ("Queen
# Victoria"); after a courtesy title, a family name ("Mr Brown").
REGNAL_PREFIXES = frozenset("king queen prince princess emperor empress tsar czar tsarina sultan pope".split())
# Where a name field notes another name: "(née Pertl)", "geb. Müller", "born Smith". The
# note and what follows it are not the person's current name.
NAME_NOTE = re.compile(r"\s*\(.*?\)|\s+\b(née|nee|geb|geborene|born|formerly|aka)\b.*$", re.IGNORECASE)
# Particles that belong to the family name that follows them ("van Beethoven", "de la Cruz").
NAME_PARTICLES = frozenset("van von der den de del della di da du la le bin ibn al el ter ten dos das mac".split())
NAME_SUFFIXES = frozenset("""jr junior sr senior ii iii iv v vi vii viii ix x xi xii xiii xiv xv xvi 1st 2nd 3rd 4th
    phd md dds esq esquire obe mbe cbe kbe dbe qc kc frs jp mp""".split())


def _name_tokens(text: str) -> list[str]:
    """Tokens of a name without notes of another name, titles before it and suffixes after
    it (a token is kept when it is the only one left: "Miss" as a given name)."""
    tokens = (NAME_NOTE.sub("", text).strip() or text).replace(".", " ").split()
    def bare(token: str) -> str:
        return token.strip(",").lower()
    while len(tokens) > 1 and bare(tokens[0]) in NAME_PREFIXES:
        tokens = tokens[1:]
    while len(tokens) > 1 and bare(tokens[-1]) in NAME_SUFFIXES:
        tokens = tokens[:-1]
    return [t.strip(",") for t in tokens if t.strip(",")]


def name_parts(text: str | None) -> tuple[str | None, str | None, str | None]:
    """(given, middle, family) from one name field: "Last, First Middle", "Dr First Middle
    Last Jr", "王伟". Middle names are every given name after the first."""
    if text is None:
        return None, None, None
    text = NAME_NOTE.sub("", text).strip() or text.strip()
    if "," in text:
        family, _, given = text.partition(",")
        family_tokens, given_tokens = _name_tokens(family), _name_tokens(given)
        family = " ".join(family_tokens) or None  # type: ignore[assignment]  # None: no family name
        if not given_tokens:
            return None, None, family
        return given_tokens[0], " ".join(given_tokens[1:]) or None, family
    if CJK.search(text) and " " not in text:
        surname_length = 2 if text[:2] in COMPOUND_SURNAMES and len(text) > 2 else 1
        return (text[surname_length:] or None), None, text[:surname_length]
    tokens = _name_tokens(text)
    if not tokens:
        return None, None, None
    if len(tokens) == 1:
        title = text.replace(".", " ").split()[0].lower()
        titled = title in NAME_PREFIXES and title not in REGNAL_PREFIXES and len(text.split()) > 1
        return (None, None, tokens[0]) if titled else (tokens[0], None, None)  # "Mr Brown": a family name
    family_start = len(tokens) - 1
    while family_start > 1 and tokens[family_start - 1].lower() in NAME_PARTICLES:
        family_start -= 1
    return tokens[0], " ".join(tokens[1:family_start]) or None, " ".join(tokens[family_start:])


def given_name_parts(text: str | None) -> tuple[str | None, str | None]:
    """(first, other given names) of a given-name field: "James D." is James with the
    middle initial D, "Dr. Mary Ann" is Mary with Ann; titles and suffixes dropped, a
    hyphenated name ("Jean-Luc") one name."""
    tokens = _name_tokens(text) if text is not None else []
    if not tokens:
        return None, None
    return tokens[0], " ".join(tokens[1:]) or None


def without_name_suffixes(text: str | None) -> str | None:
    """A family-name field without generational and post-nominal suffixes: "Anderson, Jr."
    is Anderson (a one-word value is kept whatever it is)."""
    if text is None:
        return None
    tokens = text.replace(".", " ").replace(",", " , ").split()
    def is_suffix(token: str, before: list[str]) -> bool:
        # ("de la V": a family name of particles and a letter, not a fifth generation.)
        return token.lower() in NAME_SUFFIXES and not all(t.lower() in NAME_PARTICLES for t in before if t != ",")

    while len([t for t in tokens if t != ","]) > 1 and (tokens[-1] == "," or is_suffix(tokens[-1], tokens[:-1])):
        tokens = tokens[:-1]
    return " ".join(t for t in tokens if t != ",") or None


def split_full_name(text: str | None) -> tuple[str | None, str | None]:
    """(given, family) of ``name_parts``."""
    given, _, family = name_parts(text)
    return given, family


def _parts_per_distinct(array, split: Callable[[str | None], tuple]) -> tuple[pa.Array, ...]:
    encoded = pc.dictionary_encode(as_string_array(array))
    parts = [split(v) for v in encoded.dictionary.to_pylist()]
    width = len(split(None))
    return tuple(pc.take(pa.array([p[k] for p in parts], type=pa.string()), encoded.indices) for k in range(width))


def split_full_names(array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(given, middle, family) arrays, once per distinct name."""
    return _parts_per_distinct(array, name_parts)


def split_given_names(array) -> tuple[pa.Array, pa.Array]:
    """(first, other given names) arrays of ``given_name_parts``, once per distinct value."""
    return _parts_per_distinct(array, given_name_parts)


# A date held by this many times more records than the column's typical date, and by at
# least PLACEHOLDER_MIN_RECORDS, is a system's stand-in for "unknown" (1900-01-01,
# 1911-11-11), not a birthday: judged from the column's own values, in every era.
PLACEHOLDER_RATIO = 25
PLACEHOLDER_MIN_RECORDS = 20


def _iso(year: int, month: int, day: int) -> str:
    return f"{year:04d}-{month:02d}-{day:02d}"  # strftime does not pad years before 1000


def _parse_outside_timestamp_range(values: pd.Series, order: list[str]) -> pd.Series:
    """Dates pandas' nanosecond timestamps cannot hold (before 1677: parish registers,
    historical persons), by ``datetime.strptime`` once per distinct value."""
    from datetime import datetime

    def parse(text: str) -> str | None:
        for fmt in order:
            try:
                parsed = datetime.strptime(text, fmt)
            except ValueError:
                continue
            return _iso(parsed.year, parsed.month, parsed.day)
        return None

    distinct = values.dropna().unique()
    return values.map(dict(zip(distinct, (parse(v) for v in distinct))))


def _parse_many_dates(distinct: pd.Series, order: list[str]) -> pd.Series:
    """ISO text of each distinct date text (None where no format reads it), a format at a
    time over the whole column."""
    parsed = pd.Series(pd.NaT, index=distinct.index, dtype="datetime64[ns]")
    for fmt in order:
        todo = parsed.isna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(distinct[todo], format=fmt, errors="coerce")
    # Timestamps and other ISO-like strings: take the date part.
    todo = parsed.isna()
    if todo.any():
        parsed[todo] = pd.to_datetime(distinct[todo].str[:10], format="%Y-%m-%d", errors="coerce")
    iso = parsed.dt.strftime("%Y-%m-%d").where(parsed.notna(), None).astype(object)
    todo = iso.isna()
    if todo.any():
        iso[todo] = _parse_outside_timestamp_range(distinct[todo], [*order, "%Y-%m-%d"]).to_numpy()
    return iso


# Up to this many distinct texts (a few records matched on their own) are parsed one by
# one: each pandas call costs a fraction of a millisecond however few values it is given.
FEW_DATES = 64
# The dates pandas' nanosecond timestamps hold, which ``_parse_many_dates`` reads first.
TIMESTAMP_DATES = (date(1677, 9, 22), date(2262, 4, 11))


def _parse_one_date(text: str, order: list[str]) -> str | None:
    """``_parse_many_dates`` for one text, in the same steps: each format within the
    timestamp range, the first ten characters as ISO, then each format for any year."""
    from datetime import datetime

    def read(candidate: str, fmt: str, any_year: bool) -> str | None:
        try:
            parsed = datetime.strptime(candidate, fmt).date()
        except ValueError:
            return None
        if not any_year and not TIMESTAMP_DATES[0] <= parsed <= TIMESTAMP_DATES[1]:
            return None
        return _iso(parsed.year, parsed.month, parsed.day)

    for candidate, formats, any_year in ((text, order, False), (text[:10], ["%Y-%m-%d"], False),
                                         (text, [*order, "%Y-%m-%d"], True)):
        for fmt in formats:
            found = read(candidate, fmt, any_year)
            if found is not None:
                return found
    return None


def date_format_order(array) -> list[str]:
    """``DATE_FORMATS`` ranked by how many of the column's dates each reads
    (``date_format_order_of_counts``)."""
    values = pc.utf8_trim_whitespace(as_string_array(array)).to_pandas()
    present = values[values.notna() & (values != "")]
    return date_format_order_of_counts(present.value_counts(sort=False))


def date_format_order_of_counts(counts: pd.Series) -> list[str]:
    """``DATE_FORMATS`` ranked by how many records' dates each reads, from the count of
    records per distinct text (``counts``), so an all-``DD/MM`` column is not read as
    ``MM/DD`` where both parse; ties keep ``DATE_FORMATS``' order, and so does a column of
    one distinct text. Counts, not rows: an engine that counts the texts elsewhere (Spark)
    ranks the same."""
    if len(counts) <= 1:
        return list(DATE_FORMATS)
    texts = pd.Series(counts.index.to_numpy(object), dtype=object)
    weights = counts.to_numpy(np.int64)
    success = {fmt: int(weights[pd.to_datetime(texts, format=fmt, errors="coerce").notna().to_numpy()].sum())
               for fmt in DATE_FORMATS}
    return sorted(DATE_FORMATS, key=lambda fmt: -success[fmt])


def placeholder_dates(counts: pd.Series) -> pd.Index:
    """The dates (``counts``: records per ISO date of one column) held by so many more
    records than the median date that they stand for "unknown" (``PLACEHOLDER_RATIO``)."""
    if not len(counts):
        return counts.index
    limit = max(PLACEHOLDER_MIN_RECORDS, PLACEHOLDER_RATIO * float(counts.median()))
    return counts.index[counts > limit]


def parse_dates(array, today: date | None = None, order: Sequence[str] | None = None,
                placeholders: bool = True) -> pa.Array:
    """ISO ``YYYY-MM-DD`` from many formats, tried in ``order`` (default: the column's own
    ``date_format_order``). Any year is a year (a birth in 1630 is a date); future dates
    become null, and so do placeholder dates (see ``PLACEHOLDER_RATIO``) unless
    ``placeholders`` is False: a few records matched on their own are no column to judge
    placeholders by."""
    array = pc.utf8_trim_whitespace(as_string_array(array))
    array = _null_where(array, pc.equal(array, ""))
    order = list(order) if order is not None else date_format_order(array)
    if len(array) <= FEW_DATES and (not placeholders or len(array) <= PLACEHOLDER_MIN_RECORDS):
        # No date of so few can be a placeholder: each text parsed alone, no pandas.
        texts = array.to_pylist()
        day = today or date.today()
        today_iso = _iso(day.year, day.month, day.day)
        parsed_of = {t: _parse_one_date(t, order) for t in set(texts) if t is not None}
        return pa.array([None if t is None or (parsed_of[t] or "") > today_iso else parsed_of[t] for t in texts],
                        type=pa.string())
    values = array.to_pandas()
    if values.dropna().empty:
        return pa.nulls(len(array), pa.string())
    # Each distinct text is parsed once: a column of a million birth dates holds a few
    # tens of thousands of dates.
    codes, distinct = pd.factorize(values)
    iso = _parse_many_dates(pd.Series(distinct, dtype=object), order)
    today = today or date.today()
    iso[iso.fillna("") > _iso(today.year, today.month, today.day)] = None
    # Records per date (several texts can spell one date).
    counts = pd.Series(np.bincount(codes[codes >= 0], minlength=len(distinct))).groupby(iso.to_numpy()).sum()
    if placeholders and len(counts):
        iso[iso.isin(placeholder_dates(counts))] = None
    by_record = np.append(iso.to_numpy(object), [None])[codes]  # code -1 (no text) takes the None
    return pa.array(by_record, type=pa.string(), from_pandas=True)


def _date_from_parts(text: str) -> str | None:
    """``"year|month|day"`` (parts may be empty) to ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``."""
    def whole(part: str, low: int, high: int) -> int | None:
        try:
            number = float(part)
        except ValueError:
            return None
        return int(number) if number.is_integer() and low <= number <= high else None

    year_text, month_text, day_text = text.split("|")
    year = whole(year_text, 1, date.today().year)
    if year is None:
        return None
    month, day = whole(month_text, 1, 12), whole(day_text, 1, 31)
    if month is None:
        return f"{year:04d}"
    if day is None:
        return f"{year:04d}-{month:02d}"
    try:
        date(year, month, day)
    except ValueError:  # 31 February: the year still holds
        return f"{year:04d}"
    return _iso(year, month, day)


def dates_from_parts(year, month=None, day=None) -> pa.Array:
    """ISO dates from year, month and day columns (once per distinct combination). A year
    alone, or with a month, gives a partial date, ``YYYY`` or ``YYYY-MM``: it agrees with
    full dates of that year at the date comparison's "same year" level. Impossible parts
    (month 13, 31 February) leave the year."""
    year = pc.utf8_trim_whitespace(as_string_array(year))
    empty = pa.scalar("", pa.string())
    parts = [year] + [pc.fill_null(pc.utf8_trim_whitespace(as_string_array(p)), empty) if p is not None
                      else pa.array([""] * len(year), pa.string()) for p in (month, day)]
    joined = pc.binary_join_element_wise(*parts, "|")  # null where the year is missing
    return map_distinct(joined, _date_from_parts)


def canonical_email(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip().lower()
    if text.count("@") != 1:
        return None
    local, domain = text.split("@")
    domain = EMAIL_DOMAIN_TYPOS.get(domain, domain)
    if domain.endswith(".con"):
        domain = domain[:-4] + ".com"
    if not local or "." not in domain or " " in text:
        return None
    if domain in PLUS_ADDRESSING:
        local = local.split("+", 1)[0]
    if domain == "gmail.com":
        local = local.replace(".", "")
    if local in JUNK_EMAIL_LOCALS or domain in JUNK_EMAIL_DOMAINS or not local:
        return None
    return f"{local}@{domain}"


# What Python's str.strip() removes from ASCII text (Arrow's trim kernels differ on \x1c-\x1f).
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def emails(array) -> pa.Array:
    """``canonical_email`` of each address: one by one for a few (a served match, where the
    twenty kernel calls cost more than the addresses), else ``emails_on_arrow``."""
    array = as_string_array(array)
    if len(array) <= SMALL_ARRAY:
        return pa.array([canonical_email(v) for v in array.to_pylist()], type=pa.string())
    return emails_on_arrow(array)


def emails_on_arrow(array) -> pa.Array:
    """``canonical_email`` on Arrow kernels for ASCII addresses (nearly all; a million
    distinct addresses took 2 s one by one), the function itself for the rest. The tests hold
    the two equal."""
    array = as_string_array(array)
    ascii_only = pc.fill_null(pc.string_is_ascii(array), False)
    text = pc.ascii_lower(pc.utf8_trim(pc.if_else(ascii_only, array, pa.scalar(None, pa.string())),
                                       characters=_ASCII_WHITESPACE))
    parts = pc.extract_regex(text, pattern=r"^(?P<local>[^@]*)@(?P<domain>[^@]*)$")
    local, domain = pc.struct_field(parts, "local"), pc.struct_field(parts, "domain")
    typo_keys = pa.array(list(EMAIL_DOMAIN_TYPOS))
    fixed = pc.take(pa.array(list(EMAIL_DOMAIN_TYPOS.values())), pc.index_in(domain, value_set=typo_keys))
    domain = pc.coalesce(fixed, domain)
    domain = pc.replace_substring_regex(domain, pattern=r"\.con$", replacement=".com")
    usable = pc.and_kleene(pc.and_kleene(pc.not_equal(pc.utf8_length(local), 0), pc.match_substring(domain, ".")),
                           pc.invert(pc.match_substring(text, " ")))
    plus = pc.is_in(domain, value_set=pa.array(sorted(PLUS_ADDRESSING)))
    local = pc.if_else(plus, pc.replace_substring_regex(local, pattern=r"(?s)\+.*$", replacement=""), local)
    local = pc.if_else(pc.equal(domain, "gmail.com"), pc.replace_substring(local, ".", ""), local)
    junk = pc.or_kleene(pc.or_kleene(pc.is_in(local, value_set=pa.array(sorted(JUNK_EMAIL_LOCALS))),
                                     pc.is_in(domain, value_set=pa.array(sorted(JUNK_EMAIL_DOMAINS)))),
                        pc.equal(pc.utf8_length(local), 0))
    fast = _null_where(pc.binary_join_element_wise(local, domain, "@"),
                       pc.or_kleene(pc.invert(pc.fill_null(usable, False)), pc.fill_null(junk, True)))
    slow = map_distinct(pc.if_else(ascii_only, pa.scalar(None, pa.string()), array), canonical_email)
    return pc.if_else(ascii_only, fast, slow)


def phone_parts(text: str | None, default_country: str) -> tuple[str | None, str | None]:
    """(national significant number, E.164 or None) from a number as written.

    International numbers (``+``/``00``) lose their country code, national ones their trunk
    ``0``, so "+44 7911 123456", "07911 123456" and "447911123456" share the key
    "7911123456". E.164 is given where the country is known: an international prefix, or a
    trunk-prefixed national number read in the default region.
    """
    if text is None:
        return None, None
    text = text.strip()
    digits = re.sub(r"\D", "", text)
    country = None
    if text.startswith("+") or digits.startswith("00"):
        if digits.startswith("00"):
            digits = digits[2:]
        for length in (1, 2, 3):
            if digits[:length] in COUNTRY_CODES:
                country, digits = digits[:length], digits[length:]
                break
        if digits.startswith("0"):  # "+44 (0)20 ..."
            digits = digits[1:]
    elif digits.startswith("0"):
        digits = digits[1:]
        country = default_country
    if len(digits) < 6 or len(set(digits)) == 1 or digits in JUNK_PHONE_DIGITS or ("0" + digits) in JUNK_PHONE_DIGITS:
        return None, None
    return digits, (f"+{country}{digits}" if country else None)


# Where neither the config nor the numbers say which country: the region of the project's
# first users. Only national numbers with a trunk prefix depend on it.
FALLBACK_PHONE_REGION = "GB"


# Every numbering plan is tried on this many national numbers first; only the plans that
# fit them about as well as the best go on to the whole sample. Which plan a number belongs
# to shows on the first few dozen numbers, and parsing every sample number in every one of
# the ~200 plans took seconds.
PHONE_PLAN_SCREEN = 40


def infer_phone_region(arrays: list, sample_size: int = 400) -> str | None:
    """The region of numbers written without a country code, from the numbers themselves
    (a sample of distinct values): each calling code scores the numbers written with it
    ("+44 ...") plus the national numbers valid in its numbering plan ("310/246-1501": +1,
    "020 7946 0018": +44), counting only plans whose trunk prefix is "0" when numbers carry
    one ("07..."). The code's main region wins (US for +1). None when nothing fits."""
    import phonenumbers

    distinct: list[str] = []
    for array in arrays:
        distinct += [v for v in pc.unique(pc.utf8_trim_whitespace(as_string_array(array))).to_pylist()
                     if v and sum(c.isdigit() for c in v) >= 6]
    distinct = distinct[: sample_size * 4]
    international = [v for v in distinct if v.startswith(("+", "00"))]
    national = [v for v in distinct if not v.startswith(("+", "00"))][:sample_size]
    votes: dict[int, int] = {}
    for value in international:
        try:
            code = phonenumbers.parse("+" + value.lstrip("+")[2 if value.startswith("00") else 0:], None).country_code
        except phonenumbers.NumberParseException:
            continue
        if code is not None:
            votes[code] = votes.get(code, 0) + 1

    def valid_in(region: str, values: list[str]) -> int:
        valid = 0
        for value in values:
            try:
                valid += phonenumbers.is_valid_number_for_region(phonenumbers.parse(value, region), region)
            except phonenumbers.NumberParseException:
                continue
        return valid

    trunk = any(re.sub(r"\D", "", v).startswith("0") for v in national)
    plans = {}
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        region = phonenumbers.region_code_for_country_code(code)
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region) if region not in (None, "001", "ZZ") else None
        if metadata is None or (trunk and metadata.national_prefix != "0"):
            votes.pop(code, None)
        else:
            plans[code] = region
    screen, rest = national[:PHONE_PLAN_SCREEN], national[PHONE_PLAN_SCREEN:]
    screened = {code: valid_in(region, screen) for code, region in plans.items()}
    best_screened = max(screened.values(), default=0)
    for code, region in plans.items():
        votes[code] = votes.get(code, 0) + screened[code]
        if rest and best_screened and 2 * screened[code] >= best_screened:
            votes[code] += valid_in(region, rest)
    if not votes or max(votes.values()) == 0:
        return None
    best = max(sorted(votes), key=lambda code: votes[code])
    return phonenumbers.region_code_for_country_code(best)


# Python's str.strip() removes these, Arrow's utf8_trim_whitespace keeps them.
_SPACES_PYTHON_ALONE = frozenset("\x1c\x1d\x1e\x1f")


def phones(array, default_region: str = FALLBACK_PHONE_REGION) -> tuple[pa.Array, pa.Array]:
    """(key, E.164) arrays of ``phone_parts``: one by one for a few ASCII numbers (a served
    match, where the thirty kernel calls cost more than the numbers), else ``phones_on_arrow``.
    The two read ASCII alike but for the separators only Python strips, which go to Arrow."""
    country = _country_code(default_region)
    array = as_string_array(array)
    if len(array) <= SMALL_ARRAY:
        numbers = array.to_pylist()
        if all(n is None or (n.isascii() and _SPACES_PYTHON_ALONE.isdisjoint(n)) for n in numbers):
            parts = [phone_parts(n, country) for n in numbers]
            return pa.array([k for k, _ in parts], type=pa.string()), pa.array([e for _, e in parts], type=pa.string())
    return phones_on_arrow(array, default_region)


def _country_code(region: str) -> str:
    country = str(country_code_for_region(region.upper()) or "")
    if not country:
        raise ValueError(f"unknown phone region {region!r}; use an ISO 3166 code like GB or US")
    return country


def phones_on_arrow(array, default_region: str = FALLBACK_PHONE_REGION) -> tuple[pa.Array, pa.Array]:
    """(key, E.164) arrays: ``phone_parts`` on Arrow kernels (the tests hold the two equal)."""
    country = _country_code(default_region)
    text = pc.utf8_trim_whitespace(as_string_array(array))
    digits = pc.replace_substring_regex(text, pattern=r"\D", replacement="")
    double_zero = pc.starts_with(digits, "00")
    international = pc.or_kleene(pc.starts_with(text, "+"), double_zero)
    digits = pc.if_else(double_zero, pc.utf8_slice_codeunits(digits, 2), digits)
    # Country calling codes are a prefix code: at most one of the 1-3 digit prefixes is one.
    codes = pa.array(sorted(COUNTRY_CODES))
    code, rest = pa.nulls(len(digits), pa.string()), digits
    for length in (3, 2, 1):
        prefix = pc.utf8_slice_codeunits(digits, 0, length)
        hit = pc.is_in(prefix, value_set=codes)
        code = pc.if_else(hit, prefix, code)
        rest = pc.if_else(hit, pc.utf8_slice_codeunits(digits, length), rest)
    code = pc.if_else(international, code, pa.scalar(None, pa.string()))
    rest = pc.if_else(pc.is_valid(code), rest, digits)
    trunk = pc.starts_with(rest, "0")
    national_trunk = pc.and_kleene(pc.invert(international), trunk)
    code = pc.if_else(national_trunk, pa.scalar(country), code)
    key = pc.if_else(trunk, pc.utf8_slice_codeunits(rest, 1), rest)
    length = pc.utf8_length(key)
    repeated = pc.equal(key, pc.binary_repeat(pc.utf8_slice_codeunits(key, 0, 1), length))
    junk_set = pa.array(sorted(JUNK_PHONE_DIGITS))
    junk = pc.or_kleene(pc.or_kleene(pc.less(length, 6), repeated),
                        pc.or_kleene(pc.is_in(key, value_set=junk_set),
                                     pc.is_in(pc.binary_join_element_wise("0", key, ""), value_set=junk_set)))
    key = _null_where(key, junk)
    e164 = pc.binary_join_element_wise("+", code, key, "")
    return key, _null_where(e164, pc.is_null(key))


def postcodes(array) -> pa.Array:
    """Upper case, letters and digits only; placeholders removed."""
    array = pc.utf8_upper(pc.utf8_normalize(as_string_array(array), form="NFKC"))
    array = pc.replace_substring_regex(array, pattern=r"[^0-9A-Z]", replacement="")
    junk = pc.or_kleene(pc.match_substring_regex(array, pattern=r"^(0+|X+|NA|NONE|UNKNOWN|TBC)?$"),
                        pc.less(pc.utf8_length(array), 3))
    return _null_where(array, junk)


def postcode_district(array: pa.Array) -> pa.Array:
    """The coarse part of a postcode: the UK outward code, else the first three characters."""
    length = pc.utf8_length(array)
    has_letters = pc.match_substring_regex(array, pattern=r"[A-Z]")
    outward = pc.utf8_slice_codeunits(array, 0, -3)
    return pc.if_else(pc.and_kleene(has_letters, pc.greater_equal(length, 5)), outward,
                      pc.utf8_slice_codeunits(array, 0, 3))


# "Seventh Avenue" and "7th Avenue" are one street.
ORDINAL_WORDS = {word: f"{n}{'st' if n % 10 == 1 and n != 11 else 'nd' if n % 10 == 2 and n != 12 else 'rd' if n % 10 == 3 and n != 13 else 'th'}"
                 for n, word in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
                                          "twelfth".split(), start=1)}
STREET_WORDS = {**STREET_ABBREVIATIONS, **ORDINAL_WORDS}
_STREET_WORD = re.compile(r"\b(" + "|".join(STREET_WORDS) + r")\b")


def _street(text: str | None) -> str | None:
    if text is None:
        return None
    text = unidecode(text) if not CJK.search(text) else text
    return _STREET_WORD.sub(lambda m: STREET_WORDS[m.group(1)], text) or None


def streets(array) -> tuple[pa.Array, pa.Array]:
    """(normalised street line, house number) with abbreviations spelled out."""
    cleaned = map_distinct(clean_text(array), _street)
    number = pc.extract_regex(cleaned, pattern=r"^(?P<n>\d+[a-z]?)\b")
    number = pc.struct_field(number, [0]) if len(cleaned) else pa.array([], pa.string())
    return cleaned, number


def cities(array) -> pa.Array:
    return map_distinct(clean_text(array), lambda v: unidecode(v) if not CJK.search(v) else v)


def genders(array) -> pa.Array:
    cleaned = clean_text(array)
    return map_distinct(cleaned, lambda v: GENDERS.get(v))


# Legal forms say what kind of company, not which: "Acme Ltd", "ACME Limited" and "Acme"
# are one organisation. Multi-word forms are matched first.
LEGAL_FORMS = (
    "public limited company", "limited liability company", "gesellschaft mit beschrankter haftung",
    "kabushiki kaisha", "kabushikigaisha", "aktiengesellschaft", "societe anonyme", "besloten vennootschap",
    "private limited", "pty ltd", "pvt ltd", "co ltd", "and company", "and co",
    "incorporated", "inc", "limited", "ltd", "llc", "llp", "lp", "plc", "corporation", "corp", "company", "co",
    "gmbh", "mbh", "ag", "kg", "ohg", "ug", "sarl", "sas", "sa", "srl", "spa", "bv", "nv", "oy", "ab", "as", "aps",
    "pty", "pvt", "kk", "ltda", "cia",
)
# Only at the end, repeatedly ("Acme Holdings Co Ltd"): two-letter forms (AB, SA, AG) are
# also initials at the start of a name ("A.B. Foods").
_LEGAL_FORM = re.compile(r"(\s(" + "|".join(f.replace(" ", r"\s") for f in LEGAL_FORMS) + r"))+$")
_ORGANISATION_FILLER = re.compile(r"\b(the|of|and)\b")


def _organisation(text: str | None) -> str | None:
    if text is None:
        return None
    text = unidecode(text).lower() if not CJK.search(text) else text.lower()
    text = text.replace("&", " and ")
    text = re.sub(r"(?<=\w)['’`](?=\w)", "", text)  # "morton's" -> "mortons"
    text = re.sub(r"\b(\w)\.(?=\w\.)", r"\1", text)  # "g.m.b.h." -> "gmbh."
    text = re.sub(r"\b(\w)\.(?=\w\b)", r"\1", text)
    text = re.sub(r"[^\w\s]", " ", text)
    text = " ".join(text.split())
    stripped = " ".join(_ORGANISATION_FILLER.sub(" ", _LEGAL_FORM.sub("", text)).split())
    return stripped or text or None


def organisation_names(array) -> pa.Array:
    """Comparison key of an organisation's name: folded, ASCII, apostrophes and dots closed
    up, "&" as "and", legal forms (Inc, Ltd, GmbH, S.A. ...) and "the/of/and" removed; a
    name that is nothing but such words is kept as it is."""
    return map_distinct(as_string_array(array), _organisation)


JUNK_IDENTIFIERS = frozenset({"UNKNOWN", "NONE", "NULL", "TBC", "NA", "123456", "1234567890", "0123456789"})


def _identifier(text: str | None) -> str | None:
    if text is None:
        return None
    text = re.sub(r"[\s\-./]", "", text.upper())
    if len(text) < 4 or len(set(text)) == 1 or text in JUNK_IDENTIFIERS:
        return None
    return text


def identifiers(array) -> pa.Array:
    """Upper case without separators; repeated characters and placeholders removed."""
    return map_distinct(as_string_array(array), _identifier)


def categories(array) -> pa.Array:
    return clean_text(array)


def _folded(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", unidecode(text).lower()).split())


# Names people write that ISO does not list (its names are "Russian Federation", "Türkiye").
COUNTRY_ALIASES = {"uk": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
                   "northern ireland": "GB", "russia": "RU", "turkey": "TR", "holland": "NL", "america": "US"}


@lru_cache(maxsize=1)
def country_table() -> dict[str, str]:
    """Folded country codes and names to the ISO 3166 alpha-2 code: alpha-2 and alpha-3
    codes, the English names (short, common, official) and their translations in the ~150
    languages pycountry ships ("Deutschland", "Allemagne"). (libphonenumber's geocoding
    data has the same names but costs 100 MB held in memory.)"""
    table: dict[str, str] = {}
    english = []
    for country in pycountry.countries:
        names = [n for n in (country.name, getattr(country, "common_name", None),
                             getattr(country, "official_name", None)) if n]
        english.append((country.alpha_2, names))
        for text in (country.alpha_2, country.alpha_3, *names):
            table[_folded(text)] = country.alpha_2
    for language in sorted(os.listdir(pycountry.LOCALES_DIR)):
        if not os.path.exists(os.path.join(pycountry.LOCALES_DIR, language, "LC_MESSAGES", "iso3166-1.mo")):
            continue
        translation = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])
        for code, names in english:
            for name in names:
                table.setdefault(_folded(translation.gettext(name)), code)
    for alias, code in COUNTRY_ALIASES.items():
        table.setdefault(alias, code)
    return table


def _country(text: str) -> str | None:
    table = country_table()
    folded = _folded(text)
    code = table.get(folded)
    # Older patent-office and trade files suffix a code with a letter or digit ("JPX", "GB2").
    if code is None and re.fullmatch(r"[a-z]{2}[x0-9]", folded) and len(table.get(folded[:2], "")) == 2:
        code = table[folded[:2]]
    return code.lower() if code is not None else (folded or None)


def countries(array) -> pa.Array:
    """A country as its lower-cased ISO alpha-2 code, whether written as a code (alpha-2,
    alpha-3) or a name in any of some 150 languages; other values cleaned and kept."""
    return map_distinct(clean_text(array), _country)


def null_share(array: pa.Array) -> float:
    return array.null_count / len(array) if len(array) else 0.0


__all__ = [name for name in dir() if not name.startswith("_") and name not in {"annotations", "np", "re"}]
