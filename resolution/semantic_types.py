"""The semantic types of ``linkage.toml``, each declared once: what it is, how inference
recognises its column names, how its values are standardised, which standardised columns it
owns, how they are compared, which blocking keys and golden attributes they give, and which
of them identify a person.

Every stage reads this registry: ``ingest`` standardises through it, ``comparisons`` picks
the comparisons of the columns present, ``blocking`` derives its keys, ``golden`` its
attributes, ``privacy`` the columns it pseudonymizes and erases, ``config`` the types it
accepts and ``infer`` the column names it proposes. Adding a type is adding one
``SemanticType`` to ``TYPES`` (see CONTRIBUTING.md).

Several types can feed one column: a full name gives a given, a middle and a family name; a
date of birth and year/month/day columns both give ``dob``. Each type's ``standardise``
returns its contributions per column, in the order of its columns in the source; the type
that owns a column ``finish``-es it from every type's contributions (in ``TYPES`` order,
then column order), usually by taking the first value present.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jellyfish
import pyarrow as pa
import pyarrow.compute as pc

from identigraph.resolution import standardise as std
from identigraph.resolution.comparisons import (
    Address,
    Comparison,
    DateOfBirth,
    Email,
    ExactMatch,
    FreeText,
    FuzzyString,
    GivenName,
    OrganisationName,
    Phone,
)
from identigraph.resolution.encoding import ColumnStatistics

# The standardised columns of every record table (records.parquet's schema after source and
# record_id), whatever the sources provide; columns of the category and text types follow,
# named ``category__<column>`` and ``text__<column>``.
STANDARD_COLUMNS = (
    "first_name", "middle_name", "last_name", "first_name_display", "last_name_display", "dob", "email", "phone",
    "phone_e164", "postcode", "postcode_district", "street", "street_number", "city", "region", "country",
    "gender", "identifier", "organisation",
)


@dataclass(frozen=True)
class SourceColumns:
    """One source's raw columns, by the type the config gives them."""

    table: pa.Table
    by_type: dict[str, list[str]]
    phone_region: str | None = None
    # The order dates are read in (standardise.date_format_order of the source's dates):
    # None ranks the formats on each column's own dates.
    date_order: tuple[str, ...] | None = None
    # False where the rows are a few records matched on their own, not a column whose
    # most frequent dates can be judged placeholders.
    judge_placeholders: bool = True
    # Placeholder dates judged elsewhere on the whole column (an engine that standardises
    # a source in parts: Spark), one collection per date-of-birth column: dropped as found.
    placeholder_dates: tuple[frozenset[str], ...] | None = None

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def names(self, kind: str) -> list[str]:
        return self.by_type.get(kind, [])

    def arrays(self, kind: str) -> list[pa.Array]:
        return [std.as_string_array(self.table[c]) for c in self.names(kind)]


Contributions = dict[str, list[pa.Array]]


def first_present(arrays: list[pa.Array], rows: int) -> pa.Array:
    """Per row, the first array's value that is present (all null without arrays)."""
    if not arrays:
        return pa.nulls(rows, pa.string())
    return arrays[0] if len(arrays) == 1 else pc.coalesce(*arrays)


def names_column(declared: str, column: str) -> bool:
    """A declared column name stands for ``column``: the same name, or a prefix ending in
    "__" that it starts with (``text__`` stands for ``text__birth_place``)."""
    return column == declared or (declared.endswith("__") and column.startswith(declared))


@dataclass(frozen=True)
class BlockingKey:
    """A blocking key derived from one standardised column, value by value."""

    name: str
    column: str
    function: Callable[[str], str | None]


@dataclass(frozen=True)
class BlockingRule:
    """Pairs the records that agree exactly on all its key columns (standardised columns or
    derived ``BlockingKey`` names)."""

    name: str
    columns: tuple[str, ...]
    # Overrides the run's max_block_size: a rule on names alone meets huge blocks of one
    # common name ("wei wang") whose pairs are nearly all different people.
    max_block_size: int | None = None


@dataclass(frozen=True)
class ValueDetector:
    """Inference by values: a column is of this type when more than ``share`` of its values
    match ``pattern`` whole (``re.fullmatch``); ``evidence`` says so in the printed inference."""

    pattern: str
    evidence: str
    share: float = 0.8
    # The values overrule what the column's name proposes (most values holding an "@" make an
    # e-mail column, whatever it is called); otherwise they decide only for a column whose
    # name proposes nothing.
    before_name: bool = False


@dataclass(frozen=True)
class SemanticType:
    name: str  # as written in linkage.toml
    description: str  # one line, for docs/cli.md and error messages
    # Inference: regular expressions over lower-cased column names that propose this type,
    # each with its precedence (lower is tried first, over all types).
    name_patterns: tuple[tuple[int, str], ...] = ()
    # Inference: which kind of identifying data it is; a file with two kinds is about people.
    personal_kind: str | None = None
    # Inference: how its values are recognised (names and dates have their own rules in
    # ``resolution.infer``, since they overrule one another).
    value_detector: ValueDetector | None = None
    # Contributions of a source's columns of this type to standardised columns.
    standardise: Callable[[SourceColumns], Contributions] | None = None
    # Standardised columns this type owns (or, ending in "__", the prefix of those it owns).
    owns: tuple[str, ...] = ()
    # The owned columns from all contributions; default: each owned column's first value present.
    finish: Callable[[Contributions, int], dict[str, pa.Array]] | None = None
    # Owned columns that identify a person: pseudonymized and erased (``resolution.privacy``).
    pii: tuple[str, ...] = ()
    # Comparisons of the owned columns, each with the columns any of which must be present.
    comparisons: tuple[tuple[Comparison, tuple[str, ...]], ...] = ()
    # For a prefix-owning type: the comparison of one of its columns.
    column_comparison: Callable[[str], Comparison] | None = None
    blocking_keys: tuple[BlockingKey, ...] = ()
    # Rules over this type's own columns alone (an e-mail, an identifier); the combinations
    # of names, dates and places are ``resolution.blocking.default_rules``'s.
    blocking_rules: tuple[BlockingRule, ...] = ()
    # Golden attributes: (attribute, column whose value is shown, column whose equality
    # defines "the same value").
    golden: tuple[tuple[str, str, str], ...] = ()
    # The standardised column whose presence says a raw value was valid (profile.json).
    validity_column: str | None = None

    def finished(self, contributions: Contributions, rows: int) -> dict[str, pa.Array]:
        if self.finish is not None:
            return self.finish(contributions, rows)
        out = {}
        for column in self.owns:
            if column.endswith("__"):
                out.update({name: first_present(arrays, rows) for name, arrays in contributions.items()
                            if names_column(column, name)})
            else:
                out[column] = first_present(contributions.get(column, []), rows)
        return out


def _each(kind: str, column: str, function) -> Callable[[SourceColumns], Contributions]:
    """Contributions of ``function`` over each raw column of ``kind`` to ``column``."""
    return lambda source: {column: [function(a) for a in source.arrays(kind)]}


def _dates_of_birth(source: SourceColumns) -> Contributions:
    if source.placeholder_dates is not None:
        return {"dob": [_without(std.parse_dates(a, order=source.date_order, placeholders=False), dropped)
                        for a, dropped in zip(source.arrays("date_of_birth"), source.placeholder_dates)]}
    return {"dob": [std.parse_dates(a, order=source.date_order, placeholders=source.judge_placeholders)
                    for a in source.arrays("date_of_birth")]}


def _without(dates: pa.Array, dropped: frozenset[str]) -> pa.Array:
    if not dropped:
        return dates
    return pc.if_else(pc.is_in(dates, pa.array(sorted(dropped), type=pa.string())), pa.scalar(None, pa.string()), dates)


def _name_display(contributions: Contributions, column: str, rows: int) -> pa.Array:
    return first_present([std.name_display(a) for a in contributions.get(column, [])], rows)


def _given_names(contributions: Contributions, rows: int) -> dict[str, pa.Array]:
    """The first given name's key ("James D." is james); its display keeps them all."""
    display = _name_display(contributions, "first_name", rows)
    return {"first_name": std.name_key(std.split_given_names(display)[0]), "first_name_display": display}


def _middle_names(contributions: Contributions, rows: int) -> dict[str, pa.Array]:
    """A middle-name column's key, else the given names after the first ("James D.": d)."""
    declared = [std.name_key(a) for a in contributions.get("middle_name", [])]
    after_first = std.split_given_names(_name_display(contributions, "first_name", rows))[1]
    return {"middle_name": first_present([*declared, std.name_key(after_first)], rows)}


def _family_names(contributions: Contributions, rows: int) -> dict[str, pa.Array]:
    """The family name's key without suffixes ("Anderson, Jr." is anderson); its display as written."""
    display = _name_display(contributions, "last_name", rows)
    return {"last_name": std.name_key(std.map_distinct(display, std.without_name_suffixes)),
            "last_name_display": display}


def _full_names(source: SourceColumns) -> Contributions:
    out: Contributions = {"first_name": [], "middle_name": [], "last_name": []}
    for full in source.arrays("full_name"):
        given, middle, family = std.split_full_names(full)
        out["first_name"].append(given)
        out["middle_name"].append(middle)
        out["last_name"].append(family)
    return out


def _date_from_parts(source: SourceColumns) -> Contributions:
    if not source.names("birth_year"):
        return {}
    year, month, day = ((source.arrays(kind) or [None])[0] for kind in ("birth_year", "birth_month", "birth_day"))
    return {"dob": [std.dates_from_parts(year, month, day)]}


def _phones(source: SourceColumns) -> Contributions:
    parts = [std.phones(a, source.phone_region or std.FALLBACK_PHONE_REGION) for a in source.arrays("phone")]
    return {"phone": [p[0] for p in parts], "phone_e164": [p[1] for p in parts]}


def _postcodes(contributions: Contributions, rows: int) -> dict[str, pa.Array]:
    postcode = first_present(contributions.get("postcode", []), rows)
    return {"postcode": postcode, "postcode_district": std.postcode_district(postcode)}


def _streets(source: SourceColumns) -> Contributions:
    parts = [std.streets(a) for a in source.arrays("street_address")]
    return {"street": [p[0] for p in parts], "street_number": [p[1] for p in parts]}


def _per_column(kind: str) -> Callable[[SourceColumns], Contributions]:
    """One standardised column per raw column: ``<kind>__<column>``, compared on its own."""
    return lambda source: {f"{kind}__{name}": [std.categories(std.as_string_array(source.table[name]))]
                           for name in source.names(kind)}


def _metaphone(value: str) -> str | None:
    return jellyfish.metaphone(value) or None


# In the order comparisons are made (a saved model's order) and golden attributes listed.
TYPES: tuple[SemanticType, ...] = (
    SemanticType(
        "first_name", "Given name (the first, when there are several; nicknames match their full form).",
        name_patterns=((90, r"^(first|given|fore)_?(name)?(_?c?1)?$|^fname(_?c?1)?$|^first_?name|^given_?names?"),),
        personal_kind="name", standardise=_each("first_name", "first_name", lambda a: a),
        owns=("first_name", "first_name_display"), finish=_given_names,
        pii=("first_name", "first_name_display"),
        comparisons=((GivenName("first_name", "first_name", tf=True, then_column="middle_name"), ("first_name",)),),
        blocking_keys=(BlockingKey("first_name_metaphone", "first_name", _metaphone),
                       BlockingKey("first_initial", "first_name", lambda v: v[:1])),
        golden=(("first_name", "first_name_display", "first_name"),), validity_column="first_name"),
    SemanticType(
        "middle_name", "Middle name(s).",
        name_patterns=((80, r"middle|^midl|^mid_?name$|^mname$|^mi$|^second_?(given_?)?name$|^fname_?c?[2-9]$"),),
        personal_kind="name", standardise=_each("middle_name", "middle_name", lambda a: a), owns=("middle_name",),
        finish=_middle_names,
        pii=("middle_name",),
        comparisons=((GivenName("middle_name", "middle_name", tf=True), ("middle_name",)),),
        golden=(("middle_name", "middle_name", "middle_name"),), validity_column="middle_name"),
    SemanticType(
        "last_name", "Family name (surname).",
        name_patterns=((100, r"^(last|family|sur)_?(name)?(_?c?\d)?$|^lname(_?c?\d)?$|^surname|^family_?name|^maiden"),),
        personal_kind="name", standardise=_each("last_name", "last_name", lambda a: a),
        owns=("last_name", "last_name_display"), finish=_family_names,
        pii=("last_name", "last_name_display"),
        comparisons=((FuzzyString("last_name", "last_name", tf=True), ("last_name",)),),
        blocking_keys=(BlockingKey("last_name_metaphone", "last_name", _metaphone),),
        golden=(("last_name", "last_name_display", "last_name"),), validity_column="last_name"),
    SemanticType(
        "full_name", "A whole name in one column; titles, suffixes and ordinals dropped, particles kept with "
                     "the family name.",
        # Any other "..._name" after the places' patterns (street, city, region, country names):
        # its values decide between a person's and an organisation's name ("site_name").
        name_patterns=((120, r"^(full_?)?name$|^customer_?name$|^person_?name$|^inventor_?name$"),
                       (185, r"(^|_)name$")),
        personal_kind="name", standardise=_full_names),
    SemanticType(
        "organisation_name", "A company or organisation's name; legal forms (Inc, Ltd, GmbH…) dropped.",
        name_patterns=((110, r"company|organi[sz]ation|business|employer|firm|^org(_?name)?$|merchant|vendor|"
                             r"supplier|assignee"),),
        personal_kind="name", standardise=_each("organisation_name", "organisation", std.organisation_names),
        owns=("organisation",),
        comparisons=((OrganisationName("organisation", "organisation", tf=True), ("organisation",)),),
        golden=(("organisation", "organisation", "organisation"),), validity_column="organisation"),
    SemanticType(
        "date_of_birth", "A date of birth in any common format; any past year, placeholders dropped.",
        name_patterns=((40, r"dob|birth|bday"),),
        personal_kind="dob", standardise=_dates_of_birth, owns=("dob",),
        pii=("dob",), comparisons=((DateOfBirth("dob", "dob"), ("dob",)),),
        blocking_keys=(BlockingKey("birth_year", "dob", lambda v: v[:4]),),
        golden=(("date_of_birth", "dob", "dob"),), validity_column="dob"),
    SemanticType(
        "birth_year", "Year of birth (with birth_month and birth_day when the data has them).",
        name_patterns=((10, r"^(birth_?|b_?)y(ea)?r?$|^yob$|^year_?of_?birth$|^birth_?year$"),),
        personal_kind="dob", standardise=_date_from_parts, validity_column="dob"),
    SemanticType(
        "birth_month", "Month of birth, 1–12 (with birth_year).",
        name_patterns=((20, r"^(birth_?|b_?)m(onth)?$|^mob$|^month_?of_?birth$|^birth_?month$"),)),
    SemanticType(
        "birth_day", "Day of birth, 1–31 (with birth_year).",
        name_patterns=((30, r"^(birth_?|b_?)d(ay)?$|^birth_?day$|^day_?of_?birth$"),)),
    SemanticType(
        "email", "E-mail address.", name_patterns=((50, r"e_?mail"),), personal_kind="email",
        value_detector=ValueDetector(r"(?s).*@.*", "over 80% hold an @", before_name=True),
        blocking_rules=(BlockingRule("email", ("email",)),),
        standardise=_each("email", "email", std.emails), owns=("email",), pii=("email",),
        comparisons=((Email("email", "email", tf=True), ("email",)),),
        golden=(("email", "email", "email"),), validity_column="email"),
    SemanticType(
        "phone", "Phone number in any country's format; the region is taken from the numbers when the config "
                 "gives none.",
        name_patterns=((60, r"phone|mobile|^tel|telephone|cell"),), personal_kind="phone",
        value_detector=ValueDetector(r"\+?[\d\s\-().]{7,}", "over 80% are runs of 7+ digits and separators"),
        blocking_rules=(BlockingRule("phone", ("phone",)),),
        standardise=_phones, owns=("phone", "phone_e164"), pii=("phone", "phone_e164"),
        comparisons=((Phone("phone", "phone", tf=True), ("phone",)),),
        golden=(("phone", "phone_e164", "phone"), ("phone_national", "phone", "phone")), validity_column="phone"),
    SemanticType(
        "postcode", "Postal code; its district (UK outward code, else first three characters) is derived.",
        name_patterns=((130, r"post_?code|^zip|postal"),), personal_kind="address",
        standardise=_each("postcode", "postcode", std.postcodes), owns=("postcode", "postcode_district"),
        finish=_postcodes, pii=("postcode",),
        # Street, postcode and city describe one place: one comparison over the three.
        comparisons=((Address("address"), ("street", "postcode", "city", "region")),),
        golden=(("postcode", "postcode", "postcode"),), validity_column="postcode"),
    SemanticType(
        "street_address", "Street line, with or without a house number.",
        name_patterns=((160, r"address|street|addr|line_?1"),), personal_kind="address",
        standardise=_streets, owns=("street", "street_number"), pii=("street", "street_number"),
        golden=(("street", "street", "street"),), validity_column="street"),
    SemanticType(
        "city", "City, town or locality.", name_patterns=((170, r"city|town|suburb|locality"),),
        personal_kind="address", standardise=_each("city", "city", std.cities), owns=("city",),
        golden=(("city", "city", "city"),), validity_column="city"),
    SemanticType(
        "region", "State, province, county or region: compared within the address, where it agrees when "
                  "the city does not.",
        name_patterns=((175, r"^state$|^state_?(code|name)$|county|region|province|prefecture"),),
        standardise=_each("region", "region", std.categories), owns=("region",),
        golden=(("region", "region", "region"),), validity_column="region"),
    SemanticType(
        "gender", "Gender or sex (m/f and their spellings).", name_patterns=((190, r"gender|^sex$"),),
        standardise=_each("gender", "gender", std.genders), owns=("gender",),
        comparisons=((ExactMatch("gender", "gender"), ("gender",)),),
        golden=(("gender", "gender", "gender"),), validity_column="gender"),
    SemanticType(
        "identifier", "A personal identifier (national id, loyalty card); placeholders held by many records "
                      "give no evidence.",
        name_patterns=((150, r"soc_?sec|ssn|national_?id|passport|loyalty_?(card|no|number)|nhs|tax_?id|licen[cs]e"),),
        personal_kind="identifier", standardise=_each("identifier", "identifier", std.identifiers),
        owns=("identifier",), pii=("identifier",), blocking_rules=(BlockingRule("identifier", ("identifier",)),),
        comparisons=((ExactMatch("identifier", "identifier", tf=True), ("identifier",)),),
        golden=(("identifier", "identifier", "identifier"),), validity_column="identifier"),
    SemanticType(
        "country", "Country: an ISO code (alpha-2, alpha-3) or a name in any language, compared as its alpha-2 code.",
        name_patterns=((180, r"country"),),
        standardise=_each("country", "country", std.countries), owns=("country",),
        comparisons=((ExactMatch("country", "country", tf=True), ("country",)),),
        golden=(("country", "country", "country"),), validity_column="country"),
    SemanticType(
        "category", "Any other attribute compared exactly (a segment, a kind): column category__<name>.",
        standardise=_per_column("category"), owns=("category__",),
        column_comparison=lambda column: ExactMatch(column, column, tf=True)),
    SemanticType(
        "text", "Free text compared by spelling and shared words (a house number, a birth place): column "
                "text__<name>; pseudonymized like other personal data.",
        name_patterns=((140, r"(street|house|building|flat)_?(number|no|num)$|address_?[2-9]$|line_?[2-9]$"),),
        value_detector=ValueDetector(r"\d{1,6}[a-zA-Z]?", "short numbers (house or flat numbers): compared as text"),
        standardise=_per_column("text"), owns=("text__",), pii=("text__",),
        column_comparison=lambda column: FreeText(column, column)),
    SemanticType(
        "ignore", "Not used for linkage (timestamps, titles, notes).",
        name_patterns=((0, r"(created|updated|modified|signup|registered|joined|call)_?(at|on|ts|date|time)?$|_ts$|"
                           r"_at$|timestamp|^notes?$|^reason$|^comment"),
                       # "Mr"/"Mrs" say little about who someone is and disagree across channels.
                       (1, r"^(title|salutation|honorific|name_?(prefix|suffix))$"))),
)
BY_NAME = {t.name: t for t in TYPES}
NAMES = tuple(BY_NAME)


def standardise_columns(source: SourceColumns) -> dict[str, pa.Array]:
    """The standardised columns of one source: every type's contributions, finished by the
    types that own them."""
    contributions: Contributions = {}
    for semantic_type in TYPES:
        if semantic_type.standardise is not None:
            for column, arrays in semantic_type.standardise(source).items():
                contributions.setdefault(column, []).extend(arrays)
    out: dict[str, pa.Array] = {}
    for semantic_type in TYPES:
        out.update(semantic_type.finished(contributions, source.rows))
    return out


def owner_of(column: str) -> SemanticType | None:
    """The type that owns a standardised column (None for source, record_id...)."""
    return next((t for t in TYPES for owned in t.owns if names_column(owned, column)), None)


def is_pii(column: str) -> bool:
    """A standardised record column that identifies a person."""
    owner = owner_of(column)
    return owner is not None and any(names_column(p, column) for p in owner.pii)


PII_COLUMNS = tuple(column for t in TYPES for column in t.pii if not column.endswith("__"))


def comparisons_for(columns_present: Callable[[str], bool], record_columns) -> list[Comparison]:
    """The comparisons of the columns the data has: each type's in ``TYPES`` order, then one
    per category and text column in the records' order."""
    chosen = [comparison for t in TYPES for comparison, needs in t.comparisons
              if any(columns_present(column) for column in needs)]
    for column in record_columns:
        owner = owner_of(column)
        if owner is not None and owner.column_comparison is not None:
            chosen.append(owner.column_comparison(column))
    return chosen


def default_comparisons(encoded: ColumnStatistics) -> list[Comparison]:
    """One comparison per standardised column (or group of columns) the data has."""
    return comparisons_for(lambda column: encoded.has(column, 0.0), encoded.records.columns)




def blocking_keys() -> tuple[BlockingKey, ...]:
    """Every type's derived blocking keys, in ``TYPES`` order."""
    return tuple(key for t in TYPES for key in t.blocking_keys)


def blocking_rules() -> tuple[BlockingRule, ...]:
    """Every type's rules over its own columns, in ``TYPES`` order."""
    return tuple(rule for t in TYPES for rule in t.blocking_rules)

GOLDEN_ATTRIBUTES = {attribute: (shown, key) for t in TYPES for attribute, shown, key in t.golden}
VALIDITY_COLUMNS = {t.name: t.validity_column for t in TYPES if t.validity_column}


def name_patterns() -> tuple[tuple[str, str], ...]:
    """(type, column-name pattern) of every type, by precedence: what inference tries first."""
    return tuple((t.name, pattern) for _, t, pattern in
                 sorted(((precedence, t, pattern) for t in TYPES for precedence, pattern in t.name_patterns),
                        key=lambda item: item[0]))


def value_detectors() -> tuple[tuple[str, ValueDetector], ...]:
    """(type, detector) of every type that declares one, in ``TYPES`` order."""
    return tuple((t.name, t.value_detector) for t in TYPES if t.value_detector is not None)


def personal_kinds() -> dict[str, str]:
    """Type -> the kind of identifying data it is (a file with two kinds is about people)."""
    return {t.name: t.personal_kind for t in TYPES if t.personal_kind}
