"""The embedded backend's HTTP server: moto's WSGI app behind uWSGI or waitress.

:class:`comfyfab.cloud.EmbeddedAws` runs it either in a thread of the
calling process (waitress) or, by default, as a child process
(``python -m comfyfab.moto_host``) so that moto's CPU work runs beside the
pipeline's instead of sharing its interpreter lock.

Why not moto's ``ThreadedMotoServer`` (werkzeug's development server):
werkzeug closes the connection after every response, so each AWS call paid
a TCP connect and a new server thread.  Both servers here keep connections
alive.  The child serves with uWSGI where pyuwsgi is installed
(:mod:`comfyfab.moto_uwsgi`; ``--server waitress`` otherwise): it parses
HTTP in C and serves each connection on a thread of its own, where waitress
parses in Python and hands every request from its dispatcher thread to a
pool thread.  In the pipeline's bench that took the emulator's CPU per job
10-20 % lower.  One difference from moto's own server: waitress,
like most production servers, drops request headers whose names contain an
underscore, so S3 user metadata keys with ``_`` are not stored (comfyfab's
own keys use dashes).  ``EmbeddedAws(mode="werkzeug")`` keeps moto's own
server where that matters.

The child speaks :mod:`comfyfab.child`'s protocol: it announces its port
and exits when its standard input closes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from typing import Any
from urllib.parse import parse_qs

from .child import ready

# Long polls hold a server thread for their whole wait: one per polling worker, plus headroom.
THREADS = 192
# uWSGI also gives each kept-alive connection a thread of its own, idle or not, until IDLE_S passes with
# no request on it; the pipeline's clients keep some 100 connections open.
UWSGI_THREADS = 512
IDLE_S = 10
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


def build_app() -> Any:
    """moto's WSGI app as every embedded server serves it: locked, sped up, counting, compacting on reset."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from . import moto_fast

    prepare_moto()
    return RequestCounter(compacting_on_reset(DomainDispatcherApplication(moto_fast.create_backend_app)))


def make_server(host: str = "127.0.0.1", port: int = 0, threads: int = THREADS) -> Any:
    """A waitress server for moto's app, bound but not yet serving (``.run()`` serves)."""
    from waitress.server import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" notes under load
    app = build_app()
    return create_server(app, host=host, port=port, threads=threads, connection_limit=CONNECTIONS,
                         asyncore_use_poll=True, ident="comfyfab-moto", channel_timeout=300)


SERVERS = ("uwsgi", "waitress")


def default_server() -> str:
    """uWSGI where pyuwsgi is installed, else waitress."""
    import importlib.util

    return "uwsgi" if importlib.util.find_spec("pyuwsgi") is not None else "waitress"


def serve_uwsgi(host: str, port: int, threads: int, announce: bool) -> int:
    """Serve moto's app with uWSGI in this process (:mod:`comfyfab.moto_uwsgi`); returns when uWSGI stops."""
    import pyuwsgi

    # uWSGI points file descriptor 1 at its log: the port line leaves by a copy of the real stdout
    stdout = os.dup(sys.stdout.fileno())
    pyuwsgi.run([
        "--http11-socket", f"{host}:{port}",  # HTTP/1.1: connections are kept alive
        "--module", "comfyfab.moto_uwsgi", "--single-interpreter", "--enable-threads",
        "--threads", str(threads),
        "--listen", "1024", "--buffer-size", "65535",  # presigned URLs make long request lines
        "--socket-timeout", str(IDLE_S),
        "--honour-stdin",  # comfyfab.child: the server exits when its stdin closes
        "--disable-logging", "--ignore-sigpipe", "--ignore-write-errors", "--disable-write-exception",
        "--set", f"comfyfab-host={host}", "--set", f"comfyfab-announce={int(announce)}",
        "--set", f"comfyfab-stdout={stdout}",
    ])
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m comfyfab.moto_host", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--threads", type=int, help=f"default {UWSGI_THREADS} for uwsgi, {THREADS} for waitress")
    p.add_argument("--announce", action="store_true", help="print the port as JSON; exit when stdin closes")
    p.add_argument("--server", choices=SERVERS, default=default_server())
    a = p.parse_args(argv)
    if a.server == "uwsgi":
        return serve_uwsgi(a.host, a.port, a.threads or UWSGI_THREADS, a.announce)
    server = make_server(a.host, a.port, a.threads or THREADS)
    ready(server.effective_port, a.announce, f"embedded AWS (moto) at http://{a.host}:{server.effective_port}")
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
