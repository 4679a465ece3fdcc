"""A small HTTP client for the router: what a tenant's application would use."""

from __future__ import annotations

import time
from typing import Any

import httpx


class RouterClient:
    """Submits jobs and fetches status and results with one tenant's API key."""

    def __init__(self, url: str, api_key: str, timeout: float = 30.0, client: httpx.Client | None = None):
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._http = client or httpx.Client(timeout=timeout)

    def submit(self, job: dict[str, Any]) -> httpx.Response:
        return self._http.post(f"{self.url}/v1/jobs", json=job, headers=self._headers)

    def status(self, job_id: str) -> httpx.Response:
        return self._http.get(f"{self.url}/v1/jobs/{job_id}", headers=self._headers)

    def result(self, job_id: str) -> httpx.Response:
        return self._http.get(f"{self.url}/v1/jobs/{job_id}/result", headers=self._headers)

    def wait(self, job_id: str, timeout_s: float = 120.0, poll_s: float = 0.05) -> dict[str, Any]:
        """Poll until the job is succeeded or failed; return its status body."""
        deadline = time.monotonic() + timeout_s
        while True:
            r = self.status(job_id)
            r.raise_for_status()
            body = r.json()
            if body["status"] in ("succeeded", "failed"):
                return body
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {body['status']} after {timeout_s:g}s")
            time.sleep(poll_s)

    def close(self) -> None:
        self._http.close()
