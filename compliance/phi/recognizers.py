"""The presidio recognizers of the PHI gate, and the context rule they share.

Everything here runs offline on regular expressions: presidio's own
recognizers where it has one for the entity (US SSN, US NPI, US MBI, e-mail,
phone), ours where it has none (MRN, date of birth, a name or street address
given with patient context, ICD-10 codes, NANP-shaped phone numbers).

Scores follow one convention, applied by the engine's threshold
(:data:`THRESHOLD`): a shape that is PHI on its own scores at least the
threshold (a formatted SSN, an e-mail, an MBI, a label-then-value pattern such
as ``MRN: 00482913``); an ambiguous shape (a bare 9-digit number, a Luhn-valid
10-digit number, ``E11.9``, ``12 Elm Street``) scores below it and passes only
when one of its recognizer's context terms sits within ``context_window``
characters of it.  That rule is :class:`WindowContextEnhancer`: presidio's
default enhancer reads lemmas from a spaCy pipeline, which the no-NLP engine
does not produce, so it could never see a cue in the text.

This module imports presidio (and through it spaCy), which takes a second or
two; :mod:`compliance.phi` imports it only when the first scan builds the
engine.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable, List, Optional

import tldextract
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    EmailRecognizer,
    PhoneRecognizer,
    UsMbiRecognizer,
    UsNpiRecognizer,
    UsSsnRecognizer,
)

THRESHOLD = 0.5       # a result below this is dropped
CUE = 0.35            # added to a result's score when a context term is near it
CUED_MIN = 0.6        # and the score a cued result has at least
WINDOW = 80           # characters either side of a match searched for a context term
CASE_SENSITIVE = re.DOTALL | re.MULTILINE   # presidio's default adds IGNORECASE; names need capitals

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = (r"(?:[0-9]{1,2}[/.-][0-9]{1,2}[/.-](?:[0-9]{4}|[0-9]{2})|[0-9]{4}-[0-9]{2}-[0-9]{2}|"
         rf"{_MONTH}\s+[0-9]{{1,2}},?\s+[0-9]{{4}}|[0-9]{{1,2}}\s+{_MONTH}\s+[0-9]{{4}})")
_NAME = r"[A-Z][a-z]+(?:[ ][A-Z]\.?)?[ ](?:O'|Mc|Mac)?[A-Z][a-z]+(?:-[A-Z][a-z]+)?"
# Street suffixes: the common USPS Publication 28 names and abbreviations (a trailing s is allowed).
_SUFFIXES = (
    "Alley", "Avenue", "Ave", "Bend", "Bluff", "Boulevard", "Blvd", "Branch", "Bridge", "Brook", "Burg", "Bypass",
    "Camp", "Canyon", "Cape", "Causeway", "Center", "Circle", "Cir", "Cliff", "Club", "Common", "Corner", "Course",
    "Court", "Ct", "Cove", "Creek", "Crescent", "Crest", "Crossing", "Crossroad", "Curve", "Dale", "Dam", "Divide", "Drive", "Dr",
    "Estate", "Expressway", "Extension", "Fall", "Ferry", "Field", "Flat", "Ford", "Forest", "Forge", "Fork", "Fort",
    "Freeway", "Garden", "Gateway", "Glen", "Green", "Grove", "Harbor", "Haven", "Height", "Highway", "Hwy", "Hill",
    "Hollow", "Inlet", "Island", "Isle", "Junction", "Key", "Knoll", "Lake", "Land", "Landing", "Lane", "Ln", "Light", "Loaf", "Lock",
    "Lodge", "Loop", "Mall", "Manor", "Meadow", "Mews", "Mill", "Mission", "Motorway", "Mount", "Mountain", "Neck",
    "Orchard", "Oval", "Overpass", "Park", "Parkway", "Pkwy", "Pass", "Passage", "Path", "Pike", "Pine", "Place",
    "Pl", "Plain", "Plaza", "Point", "Port", "Prairie", "Radial", "Ramp", "Ranch", "Rapid", "Rest", "Ridge", "River",
    "Road", "Rd", "Route", "Row", "Rue", "Run", "Shoal", "Shore", "Skyway", "Spring", "Spur", "Square", "Station",
    "Stravenue", "Stream", "Street", "St", "Summit", "Terrace", "Throughway", "Trace", "Track", "Trafficway",
    "Trail", "Tunnel", "Turnpike", "Underpass", "Union", "Valley", "Via", "Viaduct", "View", "Village", "Ville", "Vista",
    "Walk", "Wall", "Way", "Well")
_STREET = rf"[0-9]{{1,5}}[ ](?:[A-Z][a-z]+[ ]){{1,3}}(?:{'|'.join(_SUFFIXES)})s?\b"
# Clinical cues: a term ending in * is a stem ("diagnos*" is diagnosis, diagnosed ...).
CLINICAL = ("patient", "pt", "diagnos*", "dx", "icd", "icd10", "icd-10", "clinic*", "hospital*", "admit*",
            "discharg*", "medical", "chart", "prescri*", "radiolog*", "patholog*", "oncolog*", "biopsy", "mri",
            "ct scan", "x-ray", "physician", "nurse", "ward", "referr*", "symptom*", "treatment", "therapy",
            "medication", "lab result*")


def context_regex(terms: Iterable[str]) -> re.Pattern[str]:
    """One case-insensitive regex matching any of ``terms`` as a whole word or phrase (``stem*`` as a stem)."""
    alts = []
    for term in terms:
        stem = term.endswith("*")
        body = r"\s+".join(re.escape(w) for w in term.rstrip("*").split())
        alts.append(body + (r"[a-z]*" if stem else ""))
    return re.compile(rf"(?<![a-z0-9])(?:{'|'.join(alts)})(?![a-z0-9])", re.IGNORECASE)


class WindowContextEnhancer(ContextAwareEnhancer):
    """Presidio's context rule over raw characters: a context term near a match raises its score.

    For each result whose recognizer declares ``context``, the text from
    ``context_window`` characters before the match to as many after it (the
    recognizer's attribute, else :data:`WINDOW`) is searched for any of those
    terms; if one is there the score becomes ``max(CUED_MIN, score + CUE)``.
    A recognizer may also declare a ``veto`` regex: found in the
    ``veto_window`` characters before a match, it drops the match (a seed or
    an order number is not a phone number, however phone-shaped).
    Needs no tokens, so it works with presidio's ``NoOpNlpEngine``.
    """

    def __init__(self) -> None:
        super().__init__(context_similarity_factor=CUE, min_score_with_context_similarity=CUED_MIN,
                         context_prefix_count=0, context_suffix_count=0)
        self._regex: dict[str, re.Pattern[str]] = {}

    def _cue(self, recognizer: EntityRecognizer) -> re.Pattern[str] | None:
        if not recognizer.context:
            return None
        rx = self._regex.get(recognizer.id)
        if rx is None:
            rx = self._regex.setdefault(recognizer.id, context_regex(recognizer.context))
        return rx

    def enhance_using_context(self, text: str, raw_results: List[RecognizerResult], nlp_artifacts: NlpArtifacts,
                              recognizers: List[EntityRecognizer],
                              context: Optional[List[str]] = None) -> List[RecognizerResult]:
        by_id = {r.id: r for r in recognizers}
        for result in raw_results:
            recognizer = by_id.get(result.recognition_metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
            if recognizer is None or result.score >= self.MAX_SCORE:
                continue
            veto = getattr(recognizer, "veto", None)
            if veto is not None and veto.search(text, max(0, result.start - recognizer.veto_window), result.start):
                result.score = self.MIN_SCORE
                continue
            cue = self._cue(recognizer)
            window = getattr(recognizer, "context_window", WINDOW)
            if cue is not None and cue.search(text, max(0, result.start - window), result.end + window):
                result.score = min(self.MAX_SCORE, max(self.min_score_with_context_similarity,
                                                       result.score + self.context_similarity_factor))
                result.recognition_metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
        return raw_results


class SsnRecognizer(UsSsnRecognizer):
    """Presidio's US SSN shapes, invalidated only where the SSA never issues (fail closed otherwise).

    Presidio also drops published sample numbers (123-45-6789) and repeated
    digits; the gate refuses those too, since a prompt carrying one still
    looks like it carries an SSN.  Area numbers 900-999 are ITINs, not SSNs.
    """

    def invalidate_result(self, pattern_text: str) -> bool:
        delimiters = defaultdict(int)
        for c in pattern_text:
            if c in ".- ":
                delimiters[c] += 1
        digits = "".join(c for c in pattern_text if c.isdigit())
        return (len(delimiters) > 1 or digits[:3] in ("000", "666") or digits[0] == "9"
                or digits[3:5] == "00" or digits[5:] == "0000")


class NpiRecognizer(UsNpiRecognizer):
    """Presidio's NPI shapes and Luhn check; a valid checksum alone is not enough, it needs a cue.

    One in ten 10-digit numbers passes the Luhn check (seeds, timestamps), so
    a passing number keeps its weak pattern score instead of presidio's 1.0
    and is reported only with "NPI" or "provider" near it.
    """

    def validate_result(self, pattern_text: str) -> bool | None:
        return None if super().validate_result(pattern_text) else False


class MbiRecognizer(UsMbiRecognizer):
    """Presidio's Medicare Beneficiary Identifier shape, upper case only, reported on shape alone.

    Eleven characters with digits and letters at fixed positions (no S, L, O,
    I, B or Z) is specific enough without a cue once case is respected.
    """

    def __init__(self, supported_entity: str = "MBI") -> None:
        super().__init__(patterns=[Pattern("MBI", rf"\b{self._MBI_NO_DASH}\b", THRESHOLD),
                                   Pattern("MBI (dashed)", rf"\b{self._MBI_WITH_DASH}\b", 0.7)],
                         context=["medicare", "mbi", "beneficiary", "hicn"], supported_entity=supported_entity)
        self.global_regex_flags = CASE_SENSITIVE


class LabelledMbiRecognizer(PatternRecognizer):
    """An MBI-length id after a Medicare label, in any case and without checking letter positions."""

    def __init__(self) -> None:
        super().__init__(supported_entity="MBI", name="LabelledMbiRecognizer", patterns=[Pattern(
            "medicare label", r"\b(?:MBI|medicare(?:\s+(?:beneficiary\s+)?(?:id|number|no\.?|#))?)\s*[:#]?\s*"
                              r"[0-9][A-Za-z0-9]{3}-?[A-Za-z0-9]{3}-?[A-Za-z0-9]{4}\b", 0.85)])


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer with its domain check on tldextract's bundled suffix list.

    The stock check calls ``tldextract.extract``, which downloads the public
    suffix list on first use; the gate must never touch the network.
    """

    _extract = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

    def __init__(self) -> None:
        super().__init__(supported_entity="EMAIL")

    def validate_result(self, pattern_text: str) -> bool:
        return self._extract(pattern_text.rsplit("@", 1)[-1]).fqdn != ""


class CuedRecognizer(PatternRecognizer):
    """A pattern recognizer of our own, case-sensitive, with a context window of its own."""

    def __init__(self, entity: str, patterns: list[Pattern], context: Iterable[str] = (), window: int = WINDOW,
                 name: str | None = None) -> None:
        super().__init__(supported_entity=entity, patterns=patterns, context=list(context) or None,
                         global_regex_flags=CASE_SENSITIVE, name=name or f"{entity.title()}Recognizer")
        self.context_window = window


class BareNanpRecognizer(CuedRecognizer):
    """Ten bare digits that form a valid NANP number (area and exchange start 2-9), unless a cue says otherwise.

    Prompts carry numbers of many kinds; ten digits shaped like a North
    American number are read as one unless a numeric-parameter word (seed,
    id, sku, timestamp ...) sits just before it.  A JSON integer (the job's
    seed) is never a string, so it is never scanned.
    """

    VETO = ("seed*", "id", "ids", "job*", "sku", "invoice*", "order*", "serial*", "timestamp*", "ts", "epoch",
            "version", "build", "ean", "upc", "barcode*", "isbn", "hash", "checksum", "count", "total", "step*",
            "frame*", "batch*", "noise", "lot", "ref", "no", "number")

    def __init__(self) -> None:
        super().__init__("PHONE", [Pattern("bare NANP", r"(?<![\w.,#-])[2-9][0-9]{2}[2-9][0-9]{6}(?![\w.,-][0-9]|\w)",
                                           THRESHOLD)], name="BareNanpRecognizer")
        self.veto = re.compile(context_regex(self.VETO).pattern + "|#", re.IGNORECASE)   # "#" is no word
        self.veto_window = 24


def recognizers() -> list[EntityRecognizer]:
    """Every recognizer of the gate, entity names as :data:`compliance.phi.ENTITIES` spells them."""
    return [
        SsnRecognizer(supported_entity="SSN", context=["ssn", "ssns", "ss#", "social security"]),
        CuedRecognizer("MRN", [Pattern(
            "labelled MRN", r"\b(?i:MRN|medical\s+record(?:\s+(?:number|no\.?|num|#))?|chart\s+(?:number|no\.?|#))"
                            r"\s*[:#]?\s*[A-Za-z]{0,3}[0-9]{5,12}\b", 0.85)]),
        CuedRecognizer("DOB", [Pattern(
            "labelled birth date", rf"(?i:\b(?:DOB|D\.O\.B\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?)"
                                   rf"\s*[:#]?\s*{_DATE})", 0.85)]),
        CuedRecognizer("PHONE", [Pattern(
            "NANP", r"(?<![\w.])(?:\+?1[ .-]?)?(?:\([0-9]{3}\)\s?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}(?![0-9])", 0.7)],
            name="NanpPhoneRecognizer"),
        BareNanpRecognizer(),
        # International numbers through libphonenumber; alone they are too close to seeds, so they need a cue.
        PhoneRecognizer(supported_entity="PHONE", context=["phone", "telephone", "tel", "cell", "mobile", "call",
                                                           "fax", "contact"]),
        OfflineEmailRecognizer(),
        NpiRecognizer(supported_entity="NPI", context=["npi", "npi#", "national provider", "provider", "prescriber"]),
        CuedRecognizer("NPI", [Pattern("labelled NPI", r"(?i:\bNPI\s*(?:number|no\.?|#)?\s*[:#]?\s*)[12][0-9]{9}\b",
                                       0.85)], name="LabelledNpiRecognizer"),
        MbiRecognizer(),
        LabelledMbiRecognizer(),
        # "a patient Golden Retriever" uses the word as an adjective: no article right before the cue.
        CuedRecognizer("PERSON", [
            Pattern("patient then name",
                    rf"(?<![Aa][ ])(?<![Aa]n[ ])(?i:\b(?:patient|pt\.?)(?:\s+name)?\s*[:,-]?\s*){_NAME}", 0.85),
            Pattern("title then name", rf"(?i:\b(?:name|mr|mrs|ms|miss|dr)\.?\s*[:-]?\s*){_NAME}", 0.2)],
            context=CLINICAL),
        CuedRecognizer("ADDRESS", [
            Pattern("residence then street", rf"(?i:\b(?:lives|living|resides|residing|home\s+address|address)"
                                             rf"\s*(?:at|:)?\s*){_STREET}", 0.85),
            Pattern("street", rf"\b{_STREET}", 0.2)], context=CLINICAL),
        CuedRecognizer("ICD10", [Pattern("ICD-10 code", r"\b[A-TV-Z][0-9][0-9AB](?:\.[0-9A-TV-Z]{1,4})?\b", 0.2)],
                       context=("icd", "icd10", "icd-10", "dx", "diagnos*", "patient", "pt"), window=40),
    ]
