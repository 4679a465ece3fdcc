"""PHI exclusion at ingestion: find structured PHI in a job payload.

The router calls :func:`scan` on every job (the workflow graph's node inputs
included) before anything is enqueued or stored.  A finding names the JSON
path of the field and the entity type -- never the matched value, so
neither the API answer nor the audit trail repeats PHI.

Detection is regex-only and offline (no NLP model), in two ways:

* **Recognizers** over every string value and key.  Identifiers with a
  distinctive shape (formatted SSN, phone, e-mail, Medicare beneficiary id)
  are found on shape alone; ambiguous shapes need a cue: a bare 9-digit SSN
  needs "SSN", an MRN or NPI its label, a date a birth cue, and names,
  street addresses and ICD-10 codes need a clinical cue within a few words
  (a "portrait of Jane Austen at 221 Baker Street" is not PHI; "patient Jane
  Roe, 12 Elm Street, dx E11.9" is).
* **Schema fields**: a key that names a PHI field (``ssn``, ``dob``,
  ``patient_name``, ``mrn`` ...) with a non-empty value of any type.

Entities: SSN, MRN, DOB, PHONE, EMAIL, NPI, MBI (Medicare beneficiary id),
PERSON (a name given with patient context), ADDRESS (a street address near
a clinical cue), ICD10 (a diagnosis code with patient context).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = (r"(?:[0-9]{1,2}[/.-][0-9]{1,2}[/.-](?:[0-9]{4}|[0-9]{2})|[0-9]{4}-[0-9]{2}-[0-9]{2}|"
         rf"{_MONTH}\s+[0-9]{{1,2}},?\s+[0-9]{{4}}|[0-9]{{1,2}}\s+{_MONTH}\s+[0-9]{{4}})")
_SSN_BODY = r"(?!000|666|9[0-9]{2})[0-9]{3}([- ]?)(?!00)[0-9]{2}\1(?!0000)[0-9]{4}"
# Letters the CMS Medicare Beneficiary Identifier uses (no S, L, O, I, B, Z).
_MBI_A = "[AC-HJKMNP-RT-Y]"
_MBI_AN = "[AC-HJKMNP-RT-Y0-9]"
_NAME = r"[A-Z][a-z]+(?:[ ][A-Z]\.?)?[ ][A-Z][a-z]+(?:-[A-Z][a-z]+)?"
_STREET = (r"[0-9]{1,5}[ ](?:[A-Z][a-z]+[ ]){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|"
           r"Court|Ct|Way|Place|Pl|Terrace|Circle|Parkway|Pkwy)\b")
CLINICAL = re.compile(
    r"\b(?:patient|pt|diagnos[a-z]*|dx|icd(?:-?10)?|clinic[a-z]*|hospital[a-z]*|admit[a-z]*|discharg[a-z]*|"
    r"medical|chart|prescri[a-z]*|radiolog[a-z]*|patholog[a-z]*|oncolog[a-z]*|biopsy|mri|ct scan|x-ray|"
    r"physician|nurse|ward|referr[a-z]*|symptom[a-z]*|treatment|therapy|medication|lab results?)\b",
    re.IGNORECASE)


@dataclass(frozen=True)
class Recognizer:
    """One way of recognising one entity: a shape, and optionally a cue that must sit near it."""

    entity: str
    pattern: re.Pattern[str]
    context: re.Pattern[str] | None = None
    window: int = 80  # characters either side of the match searched for the cue

    def found(self, text: str) -> bool:
        for m in self.pattern.finditer(text):
            if self.context is None:
                return True
            near = text[max(0, m.start() - self.window): m.end() + self.window]
            if self.context.search(near):
                return True
        return False


def _r(entity: str, pattern: str, flags: int = 0, context: re.Pattern[str] | None = None,
       window: int = 80) -> Recognizer:
    return Recognizer(entity, re.compile(pattern, flags), context, window)


RECOGNIZERS: tuple[Recognizer, ...] = (
    # 3-2-4 digits with a separator, excluding never-issued areas (000, 666, 9xx), group 00 and serial 0000.
    _r("SSN", rf"(?<![0-9-]){_SSN_BODY.replace('([- ]?)', '([- ])')}(?![0-9-])"),
    _r("SSN", rf"(?i:\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|num|#))?)\s*[:#]?\s*){_SSN_BODY}(?![0-9])"),
    _r("MRN", r"(?i:\b(?:MRN|medical\s+record(?:\s+(?:number|no\.?|num|#))?|chart\s+(?:number|no\.?|#))"
              r"\s*[:#]?\s*)[A-Za-z]{0,3}[0-9]{5,12}\b"),
    _r("DOB", rf"\b(?:DOB|D\.O\.B\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?)\s*[:#]?\s*{_DATE}",
       re.IGNORECASE),
    _r("PHONE", r"(?<![\w.])(?:\+?1[ .-]?)?(?:\([0-9]{3}\)\s?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}(?!\w)"),
    _r("EMAIL", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    _r("NPI", r"(?i:\bNPI\s*(?:number|no\.?|#)?\s*[:#]?\s*)[12][0-9]{9}\b"),
    _r("MBI", rf"\b[1-9]{_MBI_A}{_MBI_AN}[0-9]-?{_MBI_A}{_MBI_AN}[0-9]-?{_MBI_A}{{2}}[0-9]{{2}}\b"),
    _r("MBI", r"(?i:\b(?:MBI|medicare(?:\s+(?:beneficiary\s+)?(?:id|number|no\.?|#))?)\s*[:#]?\s*)"
              r"[0-9][A-Za-z0-9]{3}-?[A-Za-z0-9]{3}-?[A-Za-z0-9]{4}\b"),
    # "a patient Golden Retriever" uses the word as an adjective: no article right before the cue.
    _r("PERSON", rf"(?<![Aa][ ])(?<![Aa]n[ ])(?i:\b(?:patient|pt\.?)(?:\s+name)?\s*[:,-]?\s*){_NAME}"),
    _r("PERSON", rf"(?i:\b(?:name|mr|mrs|ms|miss)\.?\s*[:-]?\s*){_NAME}", context=CLINICAL),
    _r("ADDRESS", rf"(?i:\b(?:lives|living|resides|residing|home\s+address|address)\s*(?:at|:)?\s*){_STREET}"),
    _r("ADDRESS", rf"\b{_STREET}", context=CLINICAL),
    _r("ICD10", r"\b[A-TV-Z][0-9][0-9AB](?:\.[0-9A-TV-Z]{1,4})?\b",
       context=re.compile(r"\b(?:icd(?:-?10)?|dx|diagnos[a-z]*|patient|pt)\b", re.IGNORECASE), window=40),
)

ENTITIES: tuple[str, ...] = tuple(dict.fromkeys(r.entity for r in RECOGNIZERS))

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


def scan_text(text: str, entities: Iterable[str] = ENTITIES) -> list[str]:
    """Entity types present in one string, in a fixed order."""
    wanted = set(entities)
    hits = {r.entity for r in RECOGNIZERS if r.entity in wanted and r.found(text)}
    return [e for e in ENTITIES if e in hits]


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
