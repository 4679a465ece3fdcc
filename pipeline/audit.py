"""The audit trail: security-relevant events to CloudWatch Logs and the Object-Locked bucket.

Events are buffered and written by a background thread so the router's
latency does not include a log write; :meth:`AuditLog.flush` writes now.
Each flush puts the batch into the audit log group and one JSON-lines object
into the audit bucket, where the bucket's default Object Lock retention makes
it immutable.  Events never carry payload values (no prompts, no PHI).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from .models import iso, utcnow


class AuditLog:
    """Collects audit events and ships them in batches."""

    def __init__(self, cloud: Cloud, cfg: FabricConfig, source: str, flush_interval_s: float = 1.0,
                 to_bucket: bool = True):
        self._logs = cloud.client("logs")
        self._s3 = cloud.client("s3")
        self.group = cfg.audit_log_group()
        self.bucket = cfg.audit_bucket_name() if to_bucket else None
        self.stream = f"{source}-{uuid.uuid4().hex[:8]}"
        self._buf: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._stream_ready = False
        self.written = 0
        self._interval = flush_interval_s
        self._thread = threading.Thread(target=self._loop, name=f"audit-{source}", daemon=True)
        self._thread.start()

    def event(self, kind: str, **fields: Any) -> None:
        with self._lock:
            self._buf.append({"time": iso(utcnow()), "event": kind, **fields})

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> int:
        with self._flush_lock:
            with self._lock:
                batch, self._buf = self._buf, []
            if not batch:
                return 0
            if not self._stream_ready:
                try:
                    self._logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
                except self._logs.exceptions.ResourceAlreadyExistsException:
                    pass
                self._stream_ready = True
            now_ms = int(time.time() * 1000)
            self._logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=[
                {"timestamp": now_ms, "message": json.dumps(e, sort_keys=True)} for e in batch])
            if self.bucket:
                key = f"audit/{time.strftime('%Y/%m/%d', time.gmtime())}/{self.stream}-{now_ms}.jsonl"
                self._s3.put_object(Bucket=self.bucket, Key=key,
                                    Body="\n".join(json.dumps(e, sort_keys=True) for e in batch).encode(),
                                    ContentType="application/x-ndjson")
            self.written += len(batch)
            return len(batch)

    def events(self) -> list[dict[str, Any]]:
        """Everything this log's stream holds in CloudWatch Logs (for tests and reports)."""
        self.flush()
        if not self._stream_ready:
            return []
        out = self._logs.get_log_events(logGroupName=self.group, logStreamName=self.stream, startFromHead=True)
        return [json.loads(e["message"]) for e in out["events"]]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
