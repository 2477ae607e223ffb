"""Weighted value pools drawn once from Faker, then sampled with numpy.

Calling Faker per customer costs ~20 µs a value, far too slow for millions of records;
drawing a few thousand values per locale keeps Faker's realistic frequency skew (common
surnames are common) and lets the generator sample whole arrays at once.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from faker import Faker
from pypinyin import lazy_pinyin
from unidecode import unidecode

from identigraph.synthetic.config import LOCALES

# Given-name nicknames that people use in some channels but not others. A small,
# independent list: the resolution engine ships its own, larger table.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Alexander": ("Alex", "Sandy"), "Andrew": ("Andy", "Drew"), "Anthony": ("Tony",),
    "Benjamin": ("Ben", "Benny"), "Catherine": ("Kate", "Cathy"), "Charles": ("Charlie", "Chuck"),
    "Christopher": ("Chris",), "Daniel": ("Dan", "Danny"), "David": ("Dave",),
    "Deborah": ("Debbie", "Deb"), "Edward": ("Ed", "Ted", "Eddie"), "Elizabeth": ("Liz", "Beth", "Betty"),
    "Emily": ("Em",), "James": ("Jim", "Jimmy", "Jamie"), "Jennifer": ("Jen", "Jenny"),
    "Jessica": ("Jess",), "John": ("Jack", "Johnny"), "Jonathan": ("Jon",), "Joseph": ("Joe",),
    "Joshua": ("Josh",), "Katherine": ("Kate", "Kathy", "Katie"), "Kimberly": ("Kim",),
    "Margaret": ("Maggie", "Peggy", "Meg"), "Matthew": ("Matt",), "Michael": ("Mike", "Mick"),
    "Nicholas": ("Nick",), "Patricia": ("Pat", "Trish"), "Patrick": ("Pat", "Paddy"),
    "Peter": ("Pete",), "Rebecca": ("Becky", "Becca"), "Richard": ("Rick", "Dick", "Rich"),
    "Robert": ("Bob", "Rob", "Bobby"), "Samuel": ("Sam",), "Samantha": ("Sam",),
    "Stephen": ("Steve",), "Steven": ("Steve",), "Susan": ("Sue", "Susie"), "Thomas": ("Tom", "Tommy"),
    "Timothy": ("Tim",), "Victoria": ("Vicky", "Tori"), "William": ("Will", "Bill", "Billy"),
}

EMAIL_DOMAINS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "en_GB": (("gmail.com", "hotmail.co.uk", "yahoo.co.uk", "outlook.com", "btinternet.com", "icloud.com"),
              (0.38, 0.18, 0.12, 0.14, 0.08, 0.10)),
    "en_US": (("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com"),
              (0.45, 0.15, 0.12, 0.10, 0.13, 0.05)),
    "zh_CN": (("qq.com", "163.com", "126.com", "gmail.com", "sina.com", "outlook.com"),
              (0.40, 0.25, 0.10, 0.12, 0.08, 0.05)),
}

# Real US area codes, so generated numbers pass libphonenumber's validity rules.
US_AREA_CODES = np.array([
    201, 202, 203, 205, 206, 207, 208, 212, 213, 214, 215, 216, 217, 224, 225, 228, 239, 240,
    248, 251, 253, 254, 256, 260, 262, 267, 269, 270, 281, 301, 302, 303, 304, 305, 307, 308,
    309, 310, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 323, 325, 330, 334, 336, 337,
    339, 347, 351, 352, 360, 361, 385, 386, 401, 402, 404, 405, 406, 407, 408, 409, 410, 412,
    413, 414, 415, 417, 419, 423, 424, 425, 430, 432, 434, 435, 440, 443, 469, 470, 475, 478,
    479, 480, 484, 501, 502, 503, 504, 505, 507, 508, 509, 510, 512, 513, 515, 516, 517, 518,
    520, 530, 540, 541, 551, 559, 561, 562, 563, 567, 570, 571, 573, 574, 575, 580, 585, 586,
    601, 602, 603, 605, 606, 607, 608, 609, 610, 612, 614, 615, 616, 617, 618, 619, 620, 623,
    626, 630, 631, 636, 641, 646, 650, 651, 657, 660, 661, 662, 678, 682, 701, 702, 703, 704,
    706, 707, 708, 712, 713, 714, 715, 716, 717, 718, 719, 720, 724, 727, 731, 732, 734, 740,
    754, 757, 760, 762, 763, 765, 769, 770, 772, 773, 774, 775, 779, 781, 785, 786, 801, 802,
    803, 804, 805, 806, 808, 810, 812, 813, 814, 815, 816, 817, 818, 828, 830, 831, 832, 843,
    845, 847, 848, 850, 856, 857, 858, 859, 860, 862, 863, 864, 865, 870, 872, 878, 901, 903,
    904, 906, 907, 908, 909, 910, 912, 913, 914, 915, 916, 917, 918, 919, 920, 925, 928, 931,
    936, 937, 940, 941, 947, 949, 951, 952, 954, 956, 970, 971, 972, 973, 978, 979, 980, 985,
])


@dataclass(frozen=True)
class WeightedPool:
    values: np.ndarray  # object array of str
    romanised: np.ndarray  # ASCII spelling, lower case, used for emails and romanised channels
    weights: np.ndarray  # probabilities summing to 1

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Indices into ``values``."""
        return rng.choice(len(self.values), size=size, p=self.weights)


@dataclass(frozen=True)
class LocalePools:
    locale: str
    first_female: WeightedPool
    first_male: WeightedPool
    last: WeightedPool
    street: WeightedPool
    city: WeightedPool
    postcode: WeightedPool


def romanise(text: str, locale: str) -> str:
    if locale == "zh_CN":
        return "".join(lazy_pinyin(text))
    return unidecode(text)


def _pool(draws: list[str], locale: str) -> WeightedPool:
    counts = Counter(draws)
    values = np.array(sorted(counts), dtype=object)
    weights = np.array([counts[v] for v in values], dtype=float)
    romanised = np.array([romanise(v, locale).lower().replace(" ", "") for v in values], dtype=object)
    return WeightedPool(values, romanised, weights / weights.sum())


def build_pools(seed: int, names: int = 4_000, streets: int = 6_000, cities: int = 800,
                postcodes: int = 20_000) -> dict[str, LocalePools]:
    pools = {}
    for offset, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 1_000 + offset)
        pools[locale] = LocalePools(
            locale=locale,
            first_female=_pool([fake.first_name_female() for _ in range(names)], locale),
            first_male=_pool([fake.first_name_male() for _ in range(names)], locale),
            last=_pool([fake.last_name() for _ in range(names)], locale),
            street=_pool([fake.street_name() for _ in range(streets)], locale),
            city=_pool([fake.city() for _ in range(cities)], locale),
            postcode=_pool([fake.postcode() for _ in range(postcodes)], locale),
        )
    return pools
