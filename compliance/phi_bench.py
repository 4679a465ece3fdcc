"""A labelled synthetic corpus for the PHI gate, and the figures measured on it.

The corpus is generated in code from one seeded generator, so a seed gives
the same corpus every time.  Positives are image prompts carrying one PHI
entity each (its label); negatives are benign prompts full of look-alikes:
seeds, resolutions, hex ids, UUIDs, prices, release dates without a birth
cue, GPU names, famous people and addresses without clinical context.

Metrics (written formulas, reported by ``comfyfab bench phi``):

* recall(entity) = positives of that entity in which :func:`compliance.phi.scan`
  reports that entity / positives of that entity
* structured recall = the same over SSN, MRN, DOB, PHONE, EMAIL, NPI, MBI together
* false-positive rate = benign samples with any finding / benign samples
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Callable

from . import phi

STRUCTURED = ("SSN", "MRN", "DOB", "PHONE", "EMAIL", "NPI", "MBI")
CONTEXTUAL = ("PERSON", "ADDRESS", "ICD10")

FIRST = ("Avery", "Jordan", "Maria", "Wei", "Fatima", "Lucas", "Noor", "Elena", "Kofi", "Priya", "Tomas", "Hana")
LAST = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Haddad", "Novak", "Castillo", "Brennan", "Iyer", "Kowalski")
STREETS = ("Maple", "Cedar Hill", "Harbor", "Willow Creek", "Juniper", "Northgate", "Quarry")
SUFFIXES = ("Street", "St", "Avenue", "Ave", "Road", "Lane", "Drive", "Court", "Way")
ICD = ("E11.9", "J45.909", "I10", "C50.911", "F32.A", "M54.5", "K21.9", "S72.001A", "Z00.00")
SCENES = ("studio portrait, soft window light", "watercolor landscape at dusk", "isometric product render",
          "cinematic still, 35mm film grain", "flat vector illustration", "macro photograph of dew on leaves")
MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"


@dataclass(frozen=True)
class Sample:
    """One labelled prompt: ``entity`` is the PHI it carries, or None for a benign prompt."""

    text: str
    entity: str | None


def _ssn(r: random.Random) -> str:
    area = r.choice([a for a in range(1, 900) if a != 666])
    body = f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"
    return r.choice([body, body.replace("-", " "), f"SSN {body.replace('-', '')}", f"social security number {body}"])


def _luhn_ok(digits: str) -> str:
    """Append the NPI check digit (Luhn over the 80840 prefix) to nine digits."""
    total = 0
    for i, ch in enumerate(reversed("80840" + digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def _mbi(r: random.Random) -> str:
    a = lambda: r.choice(MBI_LETTERS)  # noqa: E731
    an = lambda: r.choice(MBI_LETTERS + "0123456789")  # noqa: E731
    d = lambda: str(r.randint(0, 9))  # noqa: E731
    parts = (f"{r.randint(1, 9)}{a()}{an()}{d()}", f"{a()}{an()}{d()}", f"{a()}{a()}{d()}{d()}")
    return r.choice(["".join(parts), "-".join(parts), f"Medicare ID {'-'.join(parts)}"])


def _date(r: random.Random) -> str:
    y, m, d = r.randint(1930, 2015), r.randint(1, 12), r.randint(1, 28)
    months = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")
    return r.choice([f"{m:02d}/{d:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{months[m - 1]} {d}, {y}", f"{d} {months[m - 1][:3]} {y}"])


def _name(r: random.Random) -> str:
    mid = f" {r.choice('ABCDEJKMR')}." if r.random() < 0.3 else ""
    return f"{r.choice(FIRST)}{mid} {r.choice(LAST)}"


def _street(r: random.Random) -> str:
    return f"{r.randint(1, 9999)} {r.choice(STREETS)} {r.choice(SUFFIXES)}"


POSITIVE: dict[str, Callable[[random.Random], str]] = {
    "SSN": _ssn,
    "MRN": lambda r: r.choice(["MRN", "MRN:", "medical record number", "Medical Record #", "chart no."])
    + f" {r.choice(['', 'A', 'MR'])}{r.randint(10**5, 10**10)}",
    "DOB": lambda r: f"{r.choice(['DOB', 'DOB:', 'date of birth', 'born on', 'Birthdate:'])} {_date(r)}",
    "PHONE": lambda r: r.choice(["({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}"]).format(
        a=r.randint(201, 989), b=r.randint(200, 999), c=f"{r.randint(0, 9999):04d}"),
    "EMAIL": lambda r: f"{r.choice(FIRST).lower()}.{r.choice(LAST).lower()}{r.randint(1, 99)}@"
    f"{r.choice(['example.com', 'mail.example.org', 'clinic.example.net'])}",
    "NPI": lambda r: f"{r.choice(['NPI', 'NPI:', 'NPI #'])} {_luhn_ok(str(r.randint(1, 2)) + str(r.randint(10**7, 10**8 - 1)))}",
    "MBI": _mbi,
    "PERSON": lambda r: r.choice([f"patient {_name(r)}", f"Patient name: {_name(r)}", f"pt. {_name(r)}",
                                  f"Name: {_name(r)}, admitted for observation",
                                  f"Mrs. {_name(r)} referred to radiology",
                                  # hard case: an all-lower-case name (the gate keys on capitalisation)
                                  f"patient {_name(r).lower()}"]),
    "ADDRESS": lambda r: r.choice([f"patient lives at {_street(r)}", f"home address {_street(r)}",
                                   f"{_street(r)}, discharged to home care", f"resides at {_street(r)}"]),
    "ICD10": lambda r: r.choice([f"dx {r.choice(ICD)}", f"diagnosis code {r.choice(ICD)}",
                                 f"ICD-10 {r.choice(ICD)}", f"patient diagnosed {r.choice(ICD)}"]),
}

BENIGN: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"seed {r.randint(0, 2**32 - 1)}, steps {r.randint(10, 50)}, cfg {r.uniform(1, 12):.1f}",
    lambda r: f"{r.choice([512, 768, 1024, 1536, 2048])}x{r.choice([512, 768, 1024, 1536, 2048])}, batch {r.randint(1, 8)}",
    lambda r: f"asset id {uuid.UUID(int=r.getrandbits(128))}",
    lambda r: f"sku {r.getrandbits(48):012x}, color #{r.getrandbits(24):06x}",
    lambda r: f"price ${r.randint(1, 9999):,}.{r.randint(0, 99):02d} on sale until {_date(r)}",
    lambda r: f"release date {_date(r)}, version {r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}",
    lambda r: f"rendered on {r.choice(['H100', 'A100', 'L40S', 'A10G'])} in {r.uniform(0.5, 4):.2f} s",
    lambda r: f"portrait of {r.choice(['Abraham Lincoln', 'Ada Lovelace', 'Marie Curie', 'Frida Kahlo'])}, oil on canvas",
    lambda r: f"storefront at {_street(r)} at golden hour",
    lambda r: "medical illustration of a human heart, anatomical cross-section, labeled diagram",
    lambda r: f"a patient golden retriever waiting by the door, {r.randint(2, 8)}k",
    lambda r: f"lens {r.choice([24, 35, 50, 85])}mm f/{r.choice([1.4, 1.8, 2.8])}, ISO {r.choice([100, 400, 3200])}, "
              f"1/{r.choice([60, 125, 250, 1000])} s",
    lambda r: f"timestamp {r.randint(1_600_000_000, 1_800_000_000)}, job {r.getrandbits(64):016x}",
    lambda r: f"coordinates {r.uniform(-90, 90):.5f}, {r.uniform(-180, 180):.5f}, altitude {r.randint(0, 8848)} m",
    lambda r: f"highway A{r.randint(1, 99)} at night, long exposure, {r.randint(10, 99)}% fog",
    lambda r: f"invoice {r.randint(100, 999)}-{r.randint(1000, 9999)}, total {r.randint(1, 500)} units",
    # hard case: title-case prompts that look like a name after a clinical-sounding word
    lambda r: f"Poster Title: A Patient {r.choice(['Golden Retriever', 'Grey Heron', 'Old Lighthouse'])} "
              f"By The Sea",
)


def corpus(n_per_entity: int = 200, n_benign: int = 2000, seed: int = 7) -> list[Sample]:
    rng = random.Random(seed)
    out: list[Sample] = []
    for entity, gen in POSITIVE.items():
        for _ in range(n_per_entity):
            out.append(Sample(f"{rng.choice(SCENES)}, {gen(rng)}", entity))
    for _ in range(n_benign):
        out.append(Sample(f"{rng.choice(SCENES)}, {rng.choice(BENIGN)(rng)}", None))
    return out


@dataclass(frozen=True)
class PhiMetrics:
    """Recall per entity and the false-positive rate on benign prompts."""

    recall: dict[str, float]
    positives: dict[str, int]
    structured_recall: float
    contextual_recall: float
    benign: int
    false_positives: int
    false_positive_entities: dict[str, int]

    @property
    def false_positive_rate(self) -> float:
        return self.false_positives / self.benign if self.benign else 0.0

    def as_dict(self) -> dict:
        return {"recall": self.recall, "positives": self.positives, "structured_recall": self.structured_recall,
                "contextual_recall": self.contextual_recall, "benign": self.benign,
                "false_positives": self.false_positives, "false_positive_rate": self.false_positive_rate,
                "false_positive_entities": self.false_positive_entities}


def measure(samples: list[Sample]) -> PhiMetrics:
    hit: dict[str, int] = {}
    total: dict[str, int] = {}
    fp_entities: dict[str, int] = {}
    benign = fps = 0
    for s in samples:
        found = {f.entity for f in phi.scan({"prompt": s.text})}
        if s.entity is None:
            benign += 1
            if found:
                fps += 1
                for e in found:
                    fp_entities[e] = fp_entities.get(e, 0) + 1
        else:
            total[s.entity] = total.get(s.entity, 0) + 1
            hit[s.entity] = hit.get(s.entity, 0) + (s.entity in found)

    def pooled(names: tuple[str, ...]) -> float:
        n = sum(total.get(e, 0) for e in names)
        return sum(hit.get(e, 0) for e in names) / n if n else 0.0

    return PhiMetrics(recall={e: hit[e] / total[e] for e in total}, positives=total,
                      structured_recall=pooled(STRUCTURED), contextual_recall=pooled(CONTEXTUAL),
                      benign=benign, false_positives=fps, false_positive_entities=fp_entities)
