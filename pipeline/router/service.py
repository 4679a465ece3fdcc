"""Layer 1, the inference router's decisions, free of HTTP.

``RouterService.submit`` is the whole ingestion contract: the tenant comes
from the credential; the payload is validated; PHI is refused before
anything is stored or queued; the workflow is checked against the node
catalog the workers expose; the record is written (conditionally, so a jobId
runs once) and the job enqueued in its class queue; an ETA is estimated from
queue depth and the tenant's GPU profile.  Errors are typed; the HTTP layer
maps them to status codes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from pydantic import ValidationError

from comfyfab.cloud import Cloud
from comfyfab.config import PRIORITY_ORDER, FabricConfig
from compliance import phi

from ..audit import AuditLog
from ..comfy.validate import validate_prompt
from ..jobs import JobExists, JobStore
from ..models import InferenceJob, JobRecord, JobStatus, from_iso, iso, utcnow
from ..queues import JobQueues

log = logging.getLogger(__name__)


class RouterError(Exception):
    """Base of the errors the HTTP layer maps to a status code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, **detail: Any):
        super().__init__(message)
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.detail}


class Unauthenticated(RouterError):
    status, code = 401, "unauthenticated"


class Forbidden(RouterError):
    status, code = 403, "forbidden"


class NotFound(RouterError):
    status, code = 404, "not_found"


class Conflict(RouterError):
    status, code = 409, "conflict"


class InvalidJob(RouterError):
    status, code = 422, "invalid_job"


class PhiDetected(RouterError):
    status, code = 422, "phi_detected"


class InvalidWorkflow(RouterError):
    """The workflow failed ComfyUI validation; the body is ComfyUI's own error shape."""

    status, code = 400, "invalid_workflow"

    def __init__(self, comfy_error: dict[str, Any]):
        super().__init__(comfy_error.get("error", {}).get("message", "invalid workflow"))
        self.comfy_error = comfy_error

    def body(self) -> dict[str, Any]:
        return self.comfy_error


class Unavailable(RouterError):
    status, code = 503, "unavailable"


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass
class Accepted:
    record: JobRecord
    eta_s: float
    created: bool  # False when an identical jobId was already accepted (idempotent resubmission)
    # where the submission's time went, ms: "checks" (PHI, schema, workflow), "store" (the job record's
    # conditional write), "enqueue" (the SQS send); the router answers them as a Server-Timing header
    timing_ms: dict[str, float] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        done = from_iso(self.record.createdAt) + timedelta(seconds=self.eta_s)
        return {"jobId": self.record.jobId, "tenantId": self.record.tenantId, "priority": self.record.priority,
                "status": self.record.status.value, "etaSeconds": round(self.eta_s, 3),
                "estimatedCompletionAt": iso(done), "createdAt": self.record.createdAt}


@dataclass
class RouterService:
    """Everything the router decides, given its collaborators."""

    cfg: FabricConfig
    cloud: Cloud
    store: JobStore
    queues: JobQueues
    audit: AuditLog
    api_keys: Mapping[str, str]                  # sha256(api key) -> tenant id
    object_info: Callable[[], dict[str, Any]]    # the workers' node catalog (ComfyUI /object_info)
    bucket_of: Mapping[str, str]                 # tenant id -> output bucket
    pool_size: Callable[[str], int] | None = None
    cookie_signer: Any = None                    # pipeline.delivery.CookieSigner when the edge runs
    edge_url: str | None = None
    _depth_cache: dict[str, tuple[float, dict[str, tuple[int, int]]]] = field(default_factory=dict)
    _depth_lock: threading.Lock = field(default_factory=threading.Lock)
    _watching: threading.Event = field(default_factory=threading.Event)

    # -- authentication ----------------------------------------------------
    def authenticate(self, api_key: str | None) -> str:
        if not api_key:
            raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>' or 'X-Api-Key'")
        tenant = self.api_keys.get(key_digest(api_key))
        if tenant is None:
            raise Unauthenticated("unknown API key")
        return tenant

    # -- ingestion ---------------------------------------------------------
    def submit(self, tenant_id: str, payload: Any) -> Accepted:
        t0 = time.perf_counter()
        if not isinstance(payload, dict):
            raise InvalidJob("the body must be a JSON object (an InferenceJob)")
        # PHI first: a payload carrying PHI is refused whatever else is wrong with it.
        findings = phi.scan(payload, self.cfg.phi.entities)
        if findings:
            # The audit trail keeps a hash of the refused payload (to match a later report), never a value.
            digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
            self.audit.event("phi_rejected", tenant=tenant_id, findings=[f.as_dict() for f in findings],
                             payloadSha256=digest,
                             jobId=payload.get("jobId") if isinstance(payload.get("jobId"), str) else None)
            raise PhiDetected("the job contains protected health information and was not accepted",
                              findings=[f.as_dict() for f in findings])
        claimed = payload.get("tenantId")
        if claimed is not None and claimed != tenant_id:
            self.audit.event("cross_tenant_submit_denied", tenant=tenant_id, claimed=str(claimed)[:64])
            raise Forbidden("tenantId in the body does not match the caller's credential")
        try:
            job = InferenceJob.model_validate(payload)
        except ValidationError as exc:
            raise InvalidJob("the job does not match the InferenceJob schema", fields=[
                {"field": ".".join(str(p) for p in e["loc"]) or "$", "message": e["msg"]} for e in exc.errors()
            ]) from None
        w, h = job.resolution
        if max(w, h) > self.cfg.router.max_resolution:
            raise InvalidJob(f"resolution above the maximum of {self.cfg.router.max_resolution} px",
                             fields=[{"field": "resolution", "message": "too large"}])
        error = validate_prompt(job.workflow, self.object_info())
        if error is not None:
            raise InvalidWorkflow(error)

        now = utcnow()
        record = JobRecord.new(job, tenant_id, self._created(job, now), self.cfg.jobs.ttl_hours, now=now)
        t1 = time.perf_counter()
        timing = {"checks": (t1 - t0) * 1000}
        try:
            self.store.create(record)
        except JobExists as exc:
            if exc.record.tenantId != tenant_id:
                raise Conflict("jobId is already in use") from None
            if exc.record.promptHash != record.promptHash:
                raise Conflict("jobId was already submitted with a different workflow") from None
            if self._stale(exc.record, now):
                self._requeue(job, exc.record)
            timing["store"] = (time.perf_counter() - t1) * 1000
            return Accepted(exc.record, self.eta_s(tenant_id, job), created=False, timing_ms=timing)
        t2 = time.perf_counter()
        timing["store"] = (t2 - t1) * 1000
        try:
            self.queues.send(tenant_id, job.priority, self._message(job, record))
        except Exception as exc:
            self.store.delete(job.jobId)  # nothing half-accepted: no record without a message
            raise Unavailable(f"could not enqueue the job ({type(exc).__name__}); retry with the same jobId") from exc
        timing["enqueue"] = (time.perf_counter() - t2) * 1000
        self.audit.event("job_accepted", tenant=tenant_id, jobId=job.jobId, priority=job.priority,
                         promptHash=record.promptHash)
        return Accepted(record, self.eta_s(tenant_id, job), created=True, timing_ms=timing)

    def _created(self, job: InferenceJob, now: datetime) -> datetime:
        """The job's creation time: the client's, if it is near the router's clock (one without an offset
        is read as UTC), else refused; the router's own when the client gives none."""
        if job.createdAt is None:
            return now
        created = job.createdAt if job.createdAt.tzinfo else job.createdAt.replace(tzinfo=timezone.utc)
        skew = abs((created - now).total_seconds())
        limit = self.cfg.router.max_clock_skew_s
        if skew > limit:
            raise InvalidJob(f"createdAt is {skew:.0f} s from the router's clock (at most {limit:g} s): the record's "
                             f"{self.cfg.jobs.ttl_hours:g} h TTL counts from it; leave it out to use the router's time",
                             fields=[{"field": "createdAt", "message": f"more than {limit:g} s from the router's clock"}])
        return created

    @staticmethod
    def _message(job: InferenceJob, record: JobRecord) -> dict[str, Any]:
        body = job.model_dump(mode="json")
        body.update(tenantId=record.tenantId, createdAt=record.createdAt, ttl=record.ttl)
        return body

    def _stale(self, record: JobRecord, now: datetime) -> bool:
        """Queued, untouched for ``router.requeue_after_s`` by the router's clock: perhaps never sent."""
        if record.status is not JobStatus.QUEUED:
            return False
        return (now - from_iso(record.updatedAt)).total_seconds() >= self.cfg.router.requeue_after_s

    def _requeue(self, job: InferenceJob, record: JobRecord) -> None:
        """Send a stale queued job again.  A router that died between writing the record and sending its
        message left a record no worker will ever see; the resubmission is the client's retry.  If the
        first message does exist, SQS drops the copy within its 5-minute deduplication window (the
        deduplication id is the jobId), and after it the worker that receives the second copy finds the
        record no longer queued and drops it, so the job still runs once."""
        try:
            self.queues.send(record.tenantId, record.priority, self._message(job, record))
        except Exception as exc:
            raise Unavailable(f"could not re-enqueue the job ({type(exc).__name__}); retry with the same "
                              "jobId") from exc
        self.audit.event("job_requeued", tenant=record.tenantId, jobId=record.jobId, priority=record.priority,
                         queuedSince=record.updatedAt)

    # -- estimation --------------------------------------------------------
    def depths(self, tenant_id: str) -> dict[str, int]:
        """The tenant's visible depths, at most ``router.depth_cache_s`` old.

        With the depth watcher running (:meth:`watch_depths`) this never calls
        SQS on the request path; without it, a stale entry is refreshed inline.
        """
        return {c: visible for c, (visible, _) in self._counts(tenant_id).items()}

    def _counts(self, tenant_id: str) -> dict[str, tuple[int, int]]:
        """Per class (visible, held by a worker), cached as :meth:`depths` says."""
        now = time.monotonic()
        with self._depth_lock:
            hit = self._depth_cache.get(tenant_id)
        if hit and (self._watching.is_set() or now - hit[0] < self.cfg.router.depth_cache_s):
            return hit[1]
        return self._refresh_depths(tenant_id)

    def _refresh_depths(self, tenant_id: str) -> dict[str, tuple[int, int]]:
        d = self.queues.counts(tenant_id)
        with self._depth_lock:
            self._depth_cache[tenant_id] = (time.monotonic(), d)
        return d

    def watch_depths(self) -> threading.Event:
        """Refresh every tenant's depths in the background; set the returned event to stop."""
        for t in self.cfg.tenants:
            self._refresh_depths(t.id)
        self._watching.set()
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.cfg.router.depth_cache_s):
                for t in self.cfg.tenants:
                    try:
                        self._refresh_depths(t.id)
                    except Exception as exc:  # keep serving the last known depths; say why
                        log.warning("depth refresh for %s failed: %s", t.id, exc)
            self._watching.clear()

        threading.Thread(target=loop, daemon=True, name="router-depths").start()
        return stop

    def eta_s(self, tenant_id: str, job: InferenceJob) -> float:
        """Work ahead of the job (same or higher class) over the pool, plus its own service time.

        The pool is the fleet's size where the router can see the fleet (``pool_size``), else the
        configured warm pool; and never fewer than the workers holding messages right now, which a
        router in a process of its own learns from SQS alone: under a backlog every worker is busy,
        so an autoscaled fleet's growth shows there."""
        steps = [n.get("inputs", {}).get("steps") for n in job.workflow.values()
                 if isinstance(n, dict) and n.get("class_type") == "KSampler"]
        steps_n = max([s for s in steps if isinstance(s, int)], default=20)
        family = "sdxl" if "xl" in job.model.lower() else job.model.split(":")[0].split("-")[0].lower()
        svc = self.cfg.tenant_gpu(tenant_id).service_time(family, max(job.resolution), steps_n).mean_s
        counts = self._counts(tenant_id)  # one snapshot for the backlog and the busy workers
        ahead = sum(counts[c][0] for c in PRIORITY_ORDER[: PRIORITY_ORDER.index(job.priority) + 1])
        known = self.pool_size(tenant_id) if self.pool_size else self.cfg.fleet.warm_realtime_workers
        workers = max(1, known, sum(held for _, held in counts.values()))
        return svc * (1 + ahead / workers)

    # -- status and delivery ----------------------------------------------
    def owned(self, tenant_id: str, job_id: str) -> JobRecord:
        record = self.store.get(job_id)
        if record is None or record.tenantId != tenant_id:
            if record is not None:
                self.audit.event("cross_tenant_read_denied", tenant=tenant_id, jobId=job_id)
            raise NotFound(f"no job {job_id} for this tenant")
        return record

    def result(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        record = self.owned(tenant_id, job_id)
        if record.status is JobStatus.FAILED:
            raise Conflict("the job failed; there is no result", status=record.status.value, reason=record.error)
        if record.status is not JobStatus.SUCCEEDED:
            raise Conflict("the job has no result yet", status=record.status.value)
        s3 = self.cloud.client("s3")
        expiry = self.cfg.delivery.presign_expiry_s
        expires_at = iso(utcnow() + timedelta(seconds=expiry))
        urls = [{"key": key, "expiresAt": expires_at, "url": s3.generate_presigned_url(
            "get_object", ExpiresIn=expiry, Params={
                "Bucket": self.bucket_of[tenant_id], "Key": key,
                "ResponseCacheControl": self.cfg.delivery.cache_control}),
                 **({"cdnUrl": f"{self.edge_url}/{key}"} if self.edge_url else {})}
            for key in record.outputs]
        self.audit.event("result_delivered", tenant=tenant_id, jobId=job_id, objects=len(urls))
        return {"jobId": job_id, "expiresIn": expiry, "outputs": urls}

    def session(self, tenant_id: str) -> tuple[dict[str, str], str, datetime]:
        """Signed cookies covering the tenant's outputs at the edge: (cookies, resource, expiry)."""
        if self.cookie_signer is None or not self.edge_url:
            raise Unavailable("signed-cookie delivery is not configured on this router")
        expires = utcnow() + timedelta(seconds=self.cfg.delivery.signed_cookie_ttl_s)
        resource = f"{self.edge_url}/{tenant_id}/*"
        self.audit.event("delivery_session_issued", tenant=tenant_id, expiresAt=iso(expires))
        return self.cookie_signer.cookies(resource, expires), resource, expires
