"""PHI exclusion at ingestion: find structured PHI in a job payload.

The router calls :func:`scan` on every string in an inference job (the
workflow's node inputs included) before anything is enqueued or stored.  A
finding names the JSON path of the field and the entity type -- never the
matched value, so neither the API answer nor the audit trail repeats PHI.

Entities: US Social Security numbers, medical record numbers, dates of birth
(a date next to a birth cue), phone numbers and e-mail addresses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

_DATE = r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2}|" \
        r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}|" \
        r"\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{4})"

PATTERNS: dict[str, re.Pattern[str]] = {
    # 3-2-4 digits, excluding the never-issued 000/666/9xx area and 00 / 0000 groups.
    "SSN": re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ]?)(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])"),
    "MRN": re.compile(r"\b(?:MRN|medical\s+record(?:\s+(?:number|no\.?|#))?)\s*[:#]?\s*[A-Z]{0,3}\d{5,12}\b",
                      re.IGNORECASE),
    "DOB": re.compile(rf"\b(?:DOB|D\.O\.B\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?)\s*[:#]?\s*{_DATE}",
                      re.IGNORECASE),
    "PHONE": re.compile(r"(?<![\w.])(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w])"),
    "EMAIL": re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
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


def scan_text(text: str, entities: Iterable[str] = tuple(PATTERNS)) -> list[str]:
    """Entity types present in one string, in a fixed order."""
    return [e for e in entities if e in PATTERNS and PATTERNS[e].search(text)]


def scan(payload: Any, entities: Iterable[str] = tuple(PATTERNS)) -> list[Finding]:
    """All PHI findings in a JSON payload."""
    wanted = tuple(entities)
    found: list[Finding] = []
    for path, text in strings(payload):
        for entity in scan_text(text, wanted):
            found.append(Finding(field=path, entity=entity))
    return found
