"""Layer 1 over HTTP: the router's FastAPI app.

Routes:
  POST /v1/jobs                 submit an InferenceJob → 202 {jobId, etaSeconds, estimatedCompletionAt}
  GET  /v1/jobs/{jobId}         status of one of the caller's jobs
  GET  /v1/jobs/{jobId}/result  presigned URLs (Layer 5), valid cfg.delivery.presign_expiry_s
  POST /v1/session              signed cookies for the tenant's outputs at the delivery edge
  GET  /healthz                 liveness
OpenAPI at /docs.  Every error is a JSON body with a precise status code;
every answer carries ``Cache-Control: no-store, no-cache``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .service import RouterError, RouterService

JOB_EXAMPLE = {
    "priority": "realtime",
    "resolution": [64, 64],
    "seed": 42,
    "model": "sdxl-base-1.0",
    "workflow": {"3": {"class_type": "KSampler", "inputs": {"...": "ComfyUI API-format graph"}}},
}


def _api_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key")


def create_app(service: RouterService) -> FastAPI:
    app = FastAPI(title="comfyfab inference router", version="1",
                  description="Layer 1 of the fabric: validates jobs, refuses PHI, assigns a priority class, "
                              "enqueues, and delivers results by presigned URL.")
    no_store = {"Cache-Control": service.cfg.delivery.cache_control}
    max_body = service.cfg.router.max_body_bytes

    def answer(status: int, body: dict[str, Any]) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=no_store)

    @app.exception_handler(RouterError)
    async def _router_error(_: Request, exc: RouterError) -> JSONResponse:
        return answer(exc.status, exc.body())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return answer(exc.status_code, {"error": "http_error", "message": str(exc.detail)})

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return answer(422, {"error": "invalid_request", "message": "request parameters are invalid",
                            "fields": [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                                       for e in exc.errors()]})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return answer(500, {"error": "internal", "message": f"{type(exc).__name__}; nothing was accepted"})

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/jobs", status_code=202, responses={
        202: {"description": "accepted"}, 200: {"description": "the same jobId was already accepted"},
        400: {"description": "malformed JSON, or a workflow that fails ComfyUI validation (ComfyUI's error shape)"},
        401: {"description": "no or unknown API key"}, 403: {"description": "tenantId is not the caller's"},
        409: {"description": "jobId already used differently"}, 413: {"description": "body too large"},
        422: {"description": "schema violation or PHI detected"}},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"type": "object"}, "example": JOB_EXAMPLE}}}})
    async def submit(request: Request) -> JSONResponse:
        """Submit an InferenceJob (the case study's schema).  An accepted job's answer carries a
        ``Server-Timing`` header: the router's own milliseconds in ``checks`` (PHI, schema, workflow),
        ``store`` (the job record), ``enqueue`` (the SQS send) and ``handler`` (all of this request's
        handling, waits for a thread included)."""
        start = time.perf_counter()
        tenant = service.authenticate(_api_key(request))
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            return answer(413, {"error": "payload_too_large", "message": f"body exceeds {max_body} bytes"})
        raw = await request.body()
        if len(raw) > max_body:
            return answer(413, {"error": "payload_too_large", "message": f"body exceeds {max_body} bytes"})
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return answer(400, {"error": "malformed_json", "message": f"body is not valid JSON: {exc}"})
        accepted = await run_in_threadpool(service.submit, tenant, payload)
        response = answer(202 if accepted.created else 200, accepted.body())
        timing = {**accepted.timing_ms, "handler": (time.perf_counter() - start) * 1000}
        response.headers["Server-Timing"] = ", ".join(f"{k};dur={v:.2f}" for k, v in timing.items())
        return response

    @app.get("/v1/jobs/{job_id}")
    def status(job_id: str, request: Request) -> JSONResponse:
        """Status of one of the caller's jobs."""
        tenant = service.authenticate(_api_key(request))
        return answer(200, service.owned(tenant, job_id).public())

    @app.get("/v1/jobs/{job_id}/result")
    def result(job_id: str, request: Request) -> JSONResponse:
        """Presigned URLs for the job's outputs (Layer 5)."""
        tenant = service.authenticate(_api_key(request))
        return answer(200, service.result(tenant, job_id))

    @app.post("/v1/session")
    def session(request: Request) -> JSONResponse:
        """Signed cookies (CloudFront format) for the caller's outputs at the delivery edge."""
        from ..delivery import cookie_header_attrs

        tenant = service.authenticate(_api_key(request))
        cookies, resource, expires = service.session(tenant)
        resp = answer(200, {"resource": resource, "expiresAt": expires.isoformat(), "cookies": sorted(cookies)})
        for name, value in cookies.items():
            resp.set_cookie(name, value, **cookie_header_attrs(expires, f"/{tenant}/"))
        return resp

    return app
