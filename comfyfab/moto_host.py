"""The embedded backend's HTTP server: moto's WSGI app behind waitress.

:class:`comfyfab.cloud.EmbeddedAws` runs it either in a thread of the
calling process or, by default, as a child process
(``python -m comfyfab.moto_host``) so that moto's CPU work runs beside the
pipeline's instead of sharing its interpreter lock.

Why waitress rather than moto's ``ThreadedMotoServer`` (werkzeug's
development server): werkzeug closes the connection after every response,
so each AWS call paid a TCP connect and a new server thread; waitress keeps
connections alive and serves from a thread pool.  One difference: waitress,
like most production servers, drops request headers whose names contain an
underscore, so S3 user metadata keys with ``_`` are not stored (comfyfab's
own keys use dashes).  ``EmbeddedAws(server="werkzeug")`` keeps moto's own
server where that matters.

The child speaks :mod:`comfyfab.child`'s protocol: it announces its port
and exits when its standard input closes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from typing import Any
from urllib.parse import parse_qs

from .child import ready

# Long polls hold a server thread for their whole wait: one per polling worker, plus headroom.
THREADS = 192
CONNECTIONS = 2000


RESET_PATH = "/moto-api/reset"


def compacting_on_reset(app: Any) -> Any:
    """moto's app, but a reset also frees the state it dropped.

    The server freezes what survives each full collection
    (:func:`comfyfab.serve.keep_heap_frozen`), so the backends a reset lets go
    of would stay in memory for good: each test module resets.  A reset is a
    quiet moment, so it thaws, collects and freezes the heap again.
    """
    from .serve import compact_heap

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        body = app(environ, start_response)
        if environ.get("PATH_INFO") == RESET_PATH and environ.get("REQUEST_METHOD") == "POST":
            body = _read(body)  # the reset has run once its response is read
            compact_heap()
        return body

    return wrapped


REQUESTS_PATH = "/moto-api/comfyfab/requests"


class RequestCounter:
    """Counts the AWS requests the server answers, by service and operation: what AWS would bill.

    A WSGI wrapper around moto's app.  ``GET /moto-api/comfyfab/requests``
    answers the counts as JSON (``{"sqs ReceiveMessage": 812, ...}``) and a
    reset of the server (``POST /moto-api/reset``) zeroes them.  The operation
    comes from the ``X-Amz-Target`` header of JSON-protocol calls (SQS,
    DynamoDB, KMS, CloudWatch Logs); other calls count as the service and the
    HTTP method (``s3 PUT``).  A ``ReceiveMessage`` that returns no message
    counts as ``sqs ReceiveMessage (empty)``: requests that cost and carry
    nothing.
    """

    def __init__(self, app: Any):
        self.app = app
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def operation(environ: dict[str, Any]) -> str:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if "Credential=" in auth:
            scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        else:  # a presigned URL carries its credential scope in the query string
            scope = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0].split("/")
        service = scope[3] if len(scope) > 3 else "unsigned"
        target = environ.get("HTTP_X_AMZ_TARGET")
        return f"{service} {target.rsplit('.', 1)[-1]}" if target else f"{service} {environ.get('REQUEST_METHOD')}"

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO")
        if path == REQUESTS_PATH:
            body = json.dumps(self.snapshot(), sort_keys=True).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path == RESET_PATH and environ.get("REQUEST_METHOD") == "POST":
            with self._lock:
                self._counts.clear()
            return self.app(environ, start_response)
        op = self.operation(environ)
        body = self.app(environ, start_response)
        if op == "sqs ReceiveMessage":
            body = _read(body)
            if not any(b'"Messages"' in part for part in body):
                op += " (empty)"
        with self._lock:
            self._counts[op] = self._counts.get(op, 0) + 1
        return body


def _read(body: Any) -> list[bytes]:
    """A WSGI response's parts, read; the iterable is closed as the server would have closed it."""
    try:
        return list(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def prepare_moto() -> None:
    """What every in-process moto server needs first: locks (it answers on several threads), then speed."""
    from . import moto_fast, moto_threads

    moto_threads.apply()
    moto_fast.apply()


def make_server(host: str = "127.0.0.1", port: int = 0, threads: int = THREADS) -> Any:
    """A waitress server for moto's app, bound but not yet serving (``.run()`` serves)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from waitress.server import create_server

    from . import moto_fast

    prepare_moto()
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" notes under load
    app = RequestCounter(compacting_on_reset(DomainDispatcherApplication(moto_fast.create_backend_app)))
    return create_server(app, host=host, port=port, threads=threads, connection_limit=CONNECTIONS,
                         asyncore_use_poll=True, ident="comfyfab-moto", channel_timeout=300)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m comfyfab.moto_host", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--threads", type=int, default=THREADS)
    p.add_argument("--announce", action="store_true", help="print the port as JSON; exit when stdin closes")
    a = p.parse_args(argv)
    server = make_server(a.host, a.port, a.threads)
    ready(server.effective_port, a.announce, f"embedded AWS (moto) at http://{a.host}:{server.effective_port}")
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
