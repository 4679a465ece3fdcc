"""Checks: one small pure function per check, with its metadata beside it.

Every check lives in ``checks/<service>/<check_id>.py`` as a function named
``<check_id>(inv, cfg)`` and has ``<check_id>.metadata.json`` next to it
(severity, resources read, rationale, remediation, which backends can prove
it).  The catalog loader (:mod:`compliance.catalog`) refuses a mismatch of
id, file and function name.  A check returns one :class:`Outcome` per
resource it judged, with the evidence it saw; it never calls AWS.

Existence is judged once per resource kind (a missing queue fails
``sqs_queue_fifo``, a missing VPC ``vpc_tenant_isolation``, a missing
bucket ``s3_bucket_public_access_block``); the other checks judge only what
exists, so one broken property fails one check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping


class Status(str, Enum):
    """A verdict: PASS, FAIL, or UNVERIFIED where the backend does not expose the property."""

    PASS = "PASS"
    FAIL = "FAIL"
    # The backend does not expose the property (see compliance/BACKENDS.md): not a pass.
    UNVERIFIED = "UNVERIFIED"


@dataclass(frozen=True)
class Outcome:
    """One check's verdict on one resource, with a sentence and the evidence seen."""

    resource: str
    status: Status
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


def passed(resource: str, message: str, **evidence: Any) -> Outcome:
    return Outcome(resource, Status.PASS, message, evidence)


def failed(resource: str, message: str, **evidence: Any) -> Outcome:
    return Outcome(resource, Status.FAIL, message, evidence)


def unverified(resource: str, message: str, **evidence: Any) -> Outcome:
    return Outcome(resource, Status.UNVERIFIED, message, evidence)


def verdict(ok: bool, resource: str, good: str, bad: str, **evidence: Any) -> Outcome:
    return passed(resource, good, **evidence) if ok else failed(resource, bad, **evidence)
