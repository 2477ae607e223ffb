"""Plants fraud among the last ``n_fraud`` rows of a chunk's people.

About 70% of fraudulent identities belong to rings of 3-12 synthetic identities that
share devices and often a phone or a drop address; the rest are lone fraudsters (stolen
cards, taken-over accounts) who bust out at once: new accounts with the "fraud" persona,
whose buying behaviour (velocity, risky categories, chargebacks) ``synthetic.events``
produces.

Synthetic-identity rings cultivate their identities for months, buying like ordinary
customers to build trust and credit, before they bust out. At the moment the data is taken,
``CULTIVATING_SHARE`` of ring members are still in that phase: ordinary personas and
accounts 90-540 days old, found only through what they share with the rest of the ring.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from identigraph.synthetic.people import ChunkPeople, _hex_ids

RING_SHARE = 0.7
CULTIVATING_SHARE = 0.75
CULTIVATING_PERSONAS = np.array(["regular", "occasional"], dtype=object)


def plant_fraud(rng: np.random.Generator, people: ChunkPeople, n_fraud: int, first_ring_number: int,
                as_of: np.datetime64) -> tuple[ChunkPeople, int]:
    """Returns the updated people and the number of rings planted."""
    frame = people.frame.copy()
    devices = people.devices
    n = len(frame)
    if n_fraud == 0:
        return people, 0
    fraud_rows = np.arange(n - n_fraud, n)
    frame.loc[fraud_rows, "persona"] = "fraud"
    frame.loc[fraud_rows, "first_seen"] = as_of - rng.integers(1, 60, size=n_fraud).astype("timedelta64[D]")
    # Fraudsters have no history with the company: no old e-mail, no previous address.
    frame.loc[fraud_rows, ["old_email", "old_street", "old_city", "old_postcode"]] = None

    in_rings = fraud_rows[: int(round(n_fraud * RING_SHARE))]
    ring_sizes = []
    remaining = len(in_rings)
    while remaining >= 3:
        size = min(remaining, int(rng.integers(3, 13)))
        if remaining - size in (1, 2):
            size = remaining
        ring_sizes.append(size)
        remaining -= size
    in_rings = in_rings[: sum(ring_sizes)]
    ring_of = np.repeat(np.arange(len(ring_sizes)), ring_sizes)
    frame.loc[in_rings, "fraud_type"] = "ring"
    frame.loc[in_rings, "ring"] = first_ring_number + ring_of
    cultivating = in_rings[rng.random(len(in_rings)) < CULTIVATING_SHARE]
    frame.loc[cultivating, "persona"] = rng.choice(CULTIVATING_PERSONAS, len(cultivating))
    frame.loc[cultivating, "first_seen"] = as_of - rng.integers(90, 540, size=len(cultivating)).astype("timedelta64[D]")

    new_devices = [devices[~devices["owner_row"].isin(in_rings)]]
    for ring in range(len(ring_sizes)):
        members = in_rings[ring_of == ring]
        ring_devices = pd.DataFrame({
            "device_id": _hex_ids(rng, int(rng.integers(1, 4))),
            "device_type": rng.choice(np.array(["android", "windows", "ios"], dtype=object)),
            "ip": devices["ip"].iloc[int(rng.integers(0, len(devices)))],
        })
        # Every member uses at least one of the ring's devices; some busted-out members also
        # their own phone. A cultivating identity has no owner of its own: the ring runs it
        # from its devices only.
        for member in members:
            pick = ring_devices.sample(n=int(rng.integers(1, len(ring_devices) + 1)),
                                       random_state=int(rng.integers(0, 2**31)))
            new_devices.append(pick.assign(owner_row=member))
            if frame.loc[member, "persona"] == "fraud" and rng.random() < 0.3:
                new_devices.append(devices[devices["owner_row"] == member].head(1))
        if rng.random() < 0.6:
            frame.loc[members, ["phone_country", "mobile"]] = frame.loc[members[0], ["phone_country", "mobile"]].to_numpy()
        if rng.random() < 0.4:
            address = ["house_number", "street", "city", "postcode"]
            frame.loc[members, address] = frame.loc[members[0], address].to_numpy()
    devices = pd.concat(new_devices, ignore_index=True)[["owner_row", "device_id", "device_type", "ip"]]
    return ChunkPeople(frame, devices), len(ring_sizes)
