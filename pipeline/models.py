"""Domain models of the pipeline: the inference job and its record.

No HTTP and no boto3 here.  ``InferenceJob`` is the case study's TypeScript
schema as a pydantic model; ``JobRecord`` is the metadata row the job table
keeps (prompt hash, resolution, model version, tenant -- never the prompt).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Priority = Literal["realtime", "standard", "batch"]


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    """A timestamp :func:`iso` wrote, back as an aware datetime."""
    return datetime.fromisoformat(text)


class InferenceJob(BaseModel):
    """A request to run one ComfyUI workflow for one tenant.

    ``jobId`` and ``createdAt`` may be left out (the router fills them);
    ``tenantId`` may be left out and, when given, must match the caller's
    credential; ``ttl`` is always computed from ``createdAt``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobId: str = Field(default_factory=lambda: str(uuid.uuid4()))
    tenantId: str | None = None
    priority: Priority
    workflow: dict[str, Any]
    resolution: tuple[int, int]
    seed: int = Field(ge=0, le=2**64 - 1)
    model: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/@-]+$")
    createdAt: datetime | None = None
    ttl: int | None = None

    @field_validator("jobId")
    @classmethod
    def _uuid4(cls, v: str) -> str:
        try:
            u = uuid.UUID(v)
        except ValueError:
            raise ValueError("jobId must be a UUID") from None
        if u.version != 4 or str(u) != v.lower():
            raise ValueError("jobId must be a canonical UUIDv4")
        return str(u)

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: tuple[int, int]) -> tuple[int, int]:
        w, h = v
        if w < 8 or h < 8 or w % 8 or h % 8:
            raise ValueError("resolution must be [width, height], each a multiple of 8 and at least 8")
        return v

    @field_validator("workflow")
    @classmethod
    def _non_empty(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("workflow must be a non-empty ComfyUI API-format graph")
        return v

    def prompt_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.workflow, sort_keys=True).encode()).hexdigest()


class JobRecord(BaseModel):
    """One row of the job table."""

    model_config = ConfigDict(frozen=True)

    jobId: str
    tenantId: str
    priority: Priority
    status: JobStatus
    promptHash: str
    resolution: tuple[int, int]
    model: str
    seed: int
    createdAt: str
    updatedAt: str
    ttl: int
    attempts: int = 0
    worker: str | None = None
    startedAt: str | None = None
    finishedAt: str | None = None
    outputs: tuple[str, ...] = ()
    kmsKeyId: str | None = None
    error: str | None = None

    @classmethod
    def new(cls, job: InferenceJob, tenant_id: str, created: datetime, ttl_hours: float,
            now: datetime | None = None) -> "JobRecord":
        """``created`` may be the client's own timestamp; ``updatedAt`` is the router's clock (``now``)."""
        return cls(jobId=job.jobId, tenantId=tenant_id, priority=job.priority, status=JobStatus.QUEUED,
                   promptHash=job.prompt_hash(), resolution=job.resolution, model=job.model, seed=job.seed,
                   createdAt=iso(created), updatedAt=iso(now or created),
                   ttl=int((created + timedelta(hours=ttl_hours)).timestamp()))

    def public(self) -> dict[str, Any]:
        """What the status endpoint shows the owning tenant."""
        d = self.model_dump(mode="json", exclude_none=True)
        d.pop("kmsKeyId", None)
        return d
