"""PHI exclusion at ingestion: find structured PHI in a job payload.

The router calls :func:`scan` on every job (the workflow graph's node inputs
included) before anything is enqueued or stored.  A finding names the JSON
path of the field and the entity type -- never the matched value, so
neither the API answer nor the audit trail repeats PHI.

Detection is offline and regex-only, in two ways:

* **Recognizers** over every string value and key, run by presidio-analyzer's
  ``AnalyzerEngine`` with its ``NoOpNlpEngine`` (no spaCy model is loaded or
  downloaded) and an explicit registry (:mod:`compliance.phi.recognizers`).
  Identifiers with a distinctive shape (formatted SSN, phone, e-mail,
  Medicare beneficiary id) are found on shape alone; ambiguous shapes need a
  cue: a bare 9-digit SSN needs "SSN", an MRN or NPI its label, a date a
  birth cue, and names, street addresses and ICD-10 codes need a clinical cue
  within a few words (a "portrait of Jane Austen at 221 Baker Street" is not
  PHI; "patient Jane Roe, 12 Elm Street, dx E11.9" is).
* **Schema fields**: a key that names a PHI field (``ssn``, ``dob``,
  ``patient_name``, ``mrn`` ...) with a non-empty value of any type.

The engine is built once, on the first scan (importing presidio takes a
second or two), under a lock.  Verdicts per string are kept in a small LRU
keyed by a digest of the string, never the string, so repeated workflow keys
and node names cost nothing and no prompt text is held in memory.  A string
that is exactly a UUID in canonical form (a job id) is software's identifier,
not a place PHI can be written in any of the shapes above, so it skips the
engine: a fresh one on every job would cost the router nearly a millisecond
and push the workflow's verdicts out of the cache.

Entities: SSN, MRN, DOB, PHONE, EMAIL, NPI, MBI (Medicare beneficiary id),
PERSON (a name given with patient context), ADDRESS (a street address near
a clinical cue), ICD10 (a diagnosis code with patient context).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

LANGUAGE = "en"
CACHE_SIZE = 4096
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

ENTITIES: tuple[str, ...] = ("SSN", "MRN", "DOB", "PHONE", "EMAIL", "NPI", "MBI", "PERSON", "ADDRESS", "ICD10")

# Keys of a structured PHI field, normalised (lower case, letters and digits only).
KEY_ENTITIES: dict[str, str] = {
    **dict.fromkeys(("ssn", "socialsecuritynumber", "socialsecurity"), "SSN"),
    **dict.fromkeys(("mrn", "medicalrecordnumber", "medicalrecord", "patientid", "chartnumber"), "MRN"),
    **dict.fromkeys(("dob", "dateofbirth", "birthdate", "birthday"), "DOB"),
    **dict.fromkeys(("phone", "phonenumber", "telephone", "mobile"), "PHONE"),
    **dict.fromkeys(("email", "emailaddress"), "EMAIL"),
    **dict.fromkeys(("npi",), "NPI"),
    **dict.fromkeys(("mbi", "medicareid", "medicarenumber", "medicarebeneficiaryid"), "MBI"),
    **dict.fromkeys(("patientname", "patientfirstname", "patientlastname"), "PERSON"),
    **dict.fromkeys(("patientaddress", "homeaddress"), "ADDRESS"),
    **dict.fromkeys(("icd10", "icd10code", "diagnosiscode"), "ICD10"),
}


@dataclass(frozen=True)
class Finding:
    """One PHI entity found at ``field`` (a dotted JSON path); the value is never kept."""

    field: str
    entity: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "entity": self.entity}


def strings(obj: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value with its dotted path (keys are scanned too)."""
    if isinstance(obj, str):
        yield path or "$", obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(k, str):
                yield f"{sub}(key)", k
            yield from strings(v, sub)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from strings(v, f"{path}[{i}]")


def schema_fields(obj: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, entity) for every key that names a PHI field and holds a non-empty value."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            sub = f"{path}.{k}" if path else str(k)
            entity = KEY_ENTITIES.get(re.sub(r"[^a-z0-9]", "", str(k).lower()))
            if entity and v not in (None, "", [], {}) and not isinstance(v, (dict, list, tuple)):
                yield sub, entity
            yield from schema_fields(v, sub)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from schema_fields(v, f"{path}[{i}]")


class PhiEngineError(RuntimeError):
    """The presidio engine of the gate could not be built (a missing package or a bad recognizer)."""


def build_engine() -> "AnalyzerEngine":
    """A new presidio AnalyzerEngine: no-NLP engine, our explicit registry, our context rule."""
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        from .recognizers import THRESHOLD, WindowContextEnhancer, recognizers
    except ImportError as exc:
        raise PhiEngineError(f"the PHI gate needs presidio-analyzer: {exc}") from exc
    registry = RecognizerRegistry(recognizers=recognizers(), supported_languages=[LANGUAGE])
    missing = set(ENTITIES) - set(registry.get_supported_entities([LANGUAGE]))
    if missing:
        raise PhiEngineError(f"no recognizer for {sorted(missing)}")
    return AnalyzerEngine(registry=registry,
                          nlp_engine=NoOpNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "none"}]),
                          supported_languages=[LANGUAGE], default_score_threshold=THRESHOLD,
                          context_aware_enhancer=WindowContextEnhancer())


class _Gate:
    """The one engine of this process, built on first use, and the digest-keyed verdict cache."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: AnalyzerEngine | None = None
        self._verdicts: OrderedDict[bytes, frozenset[str]] = OrderedDict()

    def engine(self) -> "AnalyzerEngine":
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = build_engine()
        return self._engine

    def entities_in(self, text: str) -> frozenset[str]:
        """Every entity presidio reports in ``text`` (all of them: the caller filters)."""
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        with self._lock:
            hit = self._verdicts.get(key)
            if hit is not None:
                self._verdicts.move_to_end(key)
                return hit
        found = frozenset(r.entity_type for r in self.engine().analyze(text, language=LANGUAGE,
                                                                       entities=list(ENTITIES)))
        with self._lock:
            self._verdicts[key] = found
            if len(self._verdicts) > CACHE_SIZE:
                self._verdicts.popitem(last=False)
        return found

    def clear(self) -> None:
        with self._lock:
            self._verdicts.clear()


_GATE = _Gate()


def clear_cache() -> None:
    """Forget every cached verdict (the engine stays built)."""
    _GATE.clear()


def engine() -> "AnalyzerEngine":
    """The process-wide presidio engine of the gate (built on the first call)."""
    return _GATE.engine()


def scan_text(text: str, entities: Iterable[str] = ENTITIES) -> list[str]:
    """Entity types present in one string, in a fixed order."""
    wanted = set(entities)
    if not text.strip() or not wanted & set(ENTITIES) or _UUID.fullmatch(text):
        return []
    hits = _GATE.entities_in(text)
    return [e for e in ENTITIES if e in hits and e in wanted]


def scan(payload: Any, entities: Iterable[str] = ENTITIES) -> list[Finding]:
    """All PHI findings in a JSON payload, one per (field, entity)."""
    wanted = tuple(entities)
    found: dict[tuple[str, str], Finding] = {}
    for path, entity in schema_fields(payload):
        if entity in wanted:
            found.setdefault((path, entity), Finding(field=path, entity=entity))
    for path, text in strings(payload):
        for entity in scan_text(text, wanted):
            found.setdefault((path, entity), Finding(field=path, entity=entity))
    return list(found.values())
