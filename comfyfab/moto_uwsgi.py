"""The embedded AWS behind uWSGI: what ``python -m comfyfab.moto_host`` serves with when pyuwsgi is installed.

uWSGI parses HTTP and moves bytes in C, with one thread per connection,
where waitress does both in Python behind a dispatcher thread that hands
each request to a pool thread.  moto's own work is the same under both.

uWSGI imports this module once it has bound its socket (``--module``); the
module builds the same WSGI app as the waitress server (:func:`comfyfab.moto_host.build_app`)
and then speaks :mod:`comfyfab.child`'s protocol, reading the port it was
given (port 0 asks for a free one) from the bound socket.  Its settings come
as uWSGI ``--set`` options (``comfyfab-announce``), not from the environment.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import uwsgi  # type: ignore[import-not-found]  # exists only inside a uWSGI process

from .child import ready
from .moto_host import build_app


def _port() -> int:
    with socket.socket(fileno=os.dup(uwsgi.sockets[0])) as s:
        return s.getsockname()[1]


def _opt(name: str, default: str = "") -> str:
    value = uwsgi.opt.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _answering_expect(app: Any) -> Any:
    """``app``, but a request that asks ``Expect: 100-continue`` is told to go on before its body is read.

    botocore asks it of every S3 ``PutObject`` and then holds the body back for up to a second, waiting;
    waitress answers it by itself, uWSGI's HTTP socket does not.  Every request is accepted, so the answer
    goes out at once, on the request's own connection (a client that already sent its body skips it)."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_EXPECT", "").lower() == "100-continue":
            os.write(uwsgi.connection_fd(), _CONTINUE)
        return app(environ, start_response)

    return wrapped


application = _answering_expect(build_app())
_PORT = _port()
if _opt("comfyfab-stdout"):
    sys.stdout = os.fdopen(int(_opt("comfyfab-stdout")), "w")
ready(_PORT, _opt("comfyfab-announce") == "1",
      f"embedded AWS (moto, uWSGI) at http://{_opt('comfyfab-host', '127.0.0.1')}:{_PORT}")
