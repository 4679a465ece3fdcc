"""The one boto3 client factory.

Every AWS call in comfyfab goes through a :class:`Cloud`.  The three backends
differ only in where the clients point:

* ``embedded`` -- moto on a free loopback port, started and stopped by this
  process (a child process by default; see :class:`EmbeddedAws`).  Real
  HTTP and real botocore serialisation, no network, nothing to install.
* ``localstack`` -- a LocalStack gateway (and optionally per-service
  endpoints, e.g. DynamoDB Local), following localstack-client's conventions.
* ``aws`` -- no endpoint override; boto3's usual credential chain.

Entry points build a :class:`BackendSpec` (``BackendSpec.from_env`` reads the
environment variables users already know); nothing below them reads the
environment.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import boto3
from botocore.config import Config as BotoConfig

BackendKind = Literal["embedded", "localstack", "aws"]
BACKENDS: tuple[BackendKind, ...] = ("embedded", "localstack", "aws")

# Obviously fake credentials for the emulators.  moto maps "testing" to account 123456789012;
# LocalStack checks presigned-URL signatures of keys it did not issue with the secret "test".
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"
FAKE_CREDENTIALS = {"embedded": ("testing", "testing"), "localstack": ("test", "test")}

log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """A backend that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class BackendSpec:
    """Where the clients point. ``service_endpoints`` overrides ``endpoint_url`` per service."""

    kind: BackendKind
    region: str = "us-east-1"
    endpoint_url: str | None = None
    service_endpoints: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None

    @property
    def emulated(self) -> bool:
        return self.kind != "aws"

    @classmethod
    def from_env(cls, kind: str, region: str, env: Mapping[str, str]) -> "BackendSpec":
        """Build a spec the way users configure AWS tools.

        ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` (botocore's own
        names) set endpoints; for ``localstack`` without them, localstack-client's
        default gateway (``LOCALSTACK_HOST`` / ``EDGE_PORT`` aware) is used.
        """
        if kind not in BACKENDS:
            raise BackendError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
        overrides = {
            k[len("AWS_ENDPOINT_URL_"):].lower(): v
            for k, v in env.items()
            if k.startswith("AWS_ENDPOINT_URL_") and v
        }
        endpoint = env.get("AWS_ENDPOINT_URL") or None
        if kind == "localstack" and not endpoint:
            endpoint = localstack_gateway(env)
        if kind == "embedded":
            endpoint, overrides = None, {}
        return cls(kind=kind, region=env.get("AWS_DEFAULT_REGION", region) if kind == "aws" else region,
                   endpoint_url=endpoint, service_endpoints=overrides, profile=env.get("AWS_PROFILE"))


def localstack_gateway(env: Mapping[str, str]) -> str:
    """The LocalStack edge URL by localstack-client's conventions."""
    from localstack_client import config as ls_config

    host = env.get("LOCALSTACK_HOST", "")
    if host:
        return host if "://" in host else f"http://{host if ':' in host else host + ':4566'}"
    # localstack-client derives every service's URL from the same edge.
    return ls_config.get_service_endpoint("sqs") or "http://localhost:4566"


class Cloud:
    """Hands out boto3 clients for one backend; clients are cached and thread-safe."""

    def __init__(self, spec: BackendSpec):
        self.spec = spec
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        if spec.emulated:
            access, secret = FAKE_CREDENTIALS.get(spec.kind, (FAKE_ACCESS_KEY, FAKE_SECRET_KEY))
            self._session = boto3.session.Session(
                aws_access_key_id=access, aws_secret_access_key=secret, region_name=spec.region)
        else:
            self._session = boto3.session.Session(profile_name=spec.profile, region_name=spec.region)
        self._boto_config = BotoConfig(
            region_name=spec.region,
            signature_version="s3v4",
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=64,
            connect_timeout=5,
            read_timeout=60,
            s3={"addressing_style": "path"} if spec.emulated else {},
        )

    def endpoint_for(self, service: str) -> str | None:
        return self.spec.service_endpoints.get(service, self.spec.endpoint_url)

    def client(self, service: str) -> Any:
        with self._lock:
            c = self._clients.get(service)
            if c is None:
                c = self._session.client(service, endpoint_url=self.endpoint_for(service), config=self._boto_config)
                self._clients[service] = c
            return c

    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]

    def describe(self) -> str:
        where = self.spec.endpoint_url or "AWS endpoints"
        extra = "".join(f", {s}→{u}" for s, u in sorted(self.spec.service_endpoints.items()))
        return f"{self.spec.kind} ({where}{extra}, {self.spec.region})"


EmbeddedMode = Literal["process", "thread", "werkzeug"]


class EmbeddedAws:
    """moto behind a loopback HTTP server that this process starts and stops.

    ``mode``:

    * ``process`` (default) -- moto's app in a child process
      (:mod:`comfyfab.moto_host`): moto's CPU work runs on another core than
      the pipeline's, and connections are kept alive.  ``server`` picks the
      HTTP server there: ``uwsgi`` (the default where pyuwsgi is installed;
      10-20 % less of the emulator's CPU per job in the pipeline's bench) or ``waitress``.
    * ``thread`` -- the same server in a thread of this process.
    * ``werkzeug`` -- moto's own ``ThreadedMotoServer`` in a thread (a
      connection per call; keeps S3 metadata keys that contain ``_``).

    All three are the same moto, reached over real HTTP; :meth:`reset` empties
    its state.  Each server has its own state, except that ``thread`` and
    ``werkzeug`` servers share this process's moto backends.
    """

    MODES: tuple[str, ...] = ("process", "thread", "werkzeug")

    def __init__(self, region: str = "us-east-1", host: str = "127.0.0.1", mode: EmbeddedMode = "process",
                 start_timeout_s: float = 60.0, server: str | None = None):
        from .moto_host import SERVERS, default_server

        if mode not in self.MODES:
            raise BackendError(f"unknown embedded mode {mode!r}; choose one of {', '.join(self.MODES)}")
        if server is not None and (mode != "process" or server not in SERVERS):
            raise BackendError(f"server {server!r}: the {mode} mode takes none" if mode != "process" else
                               f"unknown embedded server {server!r}; choose one of {', '.join(SERVERS)}")
        if mode == "process" and server is None:
            server = default_server()
        self.server = server  # the child's HTTP server; None for the in-thread modes
        self.region = region
        self.host = host
        self.mode = mode
        self.start_timeout_s = start_timeout_s
        self._server: Any = None
        self._proc: Any = None
        self.url: str | None = None

    def start(self) -> "EmbeddedAws":
        if self.mode == "process":
            port = self._start_process()
        elif self.mode == "thread":
            from .moto_host import make_server

            self._server = make_server(self.host)
            threading.Thread(target=self._server.run, daemon=True, name="embedded-aws").start()
            port = self._server.effective_port
        else:
            from moto.server import ThreadedMotoServer

            from .moto_host import prepare_moto

            prepare_moto()
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            self._server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
            self._server.start()
            port = self._server.get_host_and_port()[1]
        self.url = f"http://{self.host}:{port}"
        return self

    def _start_process(self) -> int:
        from .child import ChildServer, ChildServerError

        args = ["--host", self.host, "--server", str(self.server)]
        self._proc = ChildServer("comfyfab.moto_host", args, "the embedded AWS server", self.start_timeout_s)
        try:
            return self._proc.start()
        except ChildServerError as exc:
            self._proc = None
            raise BackendError(str(exc)) from None

    def describe(self) -> str:
        """How moto is hosted, e.g. ``moto behind uwsgi in a child process``."""
        if self.mode == "process":
            return f"moto behind {self.server} in a child process"
        return "moto behind waitress in this process" if self.mode == "thread" else "moto's own server in this process"

    @property
    def pid(self) -> int | None:
        """The server process's id in ``process`` mode; None otherwise."""
        return self._proc.pid if self._proc is not None else None  # ChildServer

    def cloud(self) -> Cloud:
        if self.url is None:
            raise BackendError("embedded AWS is not started")
        return Cloud(BackendSpec(kind="embedded", region=self.region, endpoint_url=self.url))

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()

    def requests(self) -> dict[str, int] | None:
        """How many requests the server has answered since it started or was last reset, by service and
        operation (:class:`comfyfab.moto_host.RequestCounter`); None for the ``werkzeug`` mode, which
        does not count."""
        import json
        import urllib.request

        from .moto_host import REQUESTS_PATH

        if self.url is None:
            raise BackendError("embedded AWS is not started")
        if self.mode == "werkzeug":
            return None
        with urllib.request.urlopen(f"{self.url}{REQUESTS_PATH}") as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
        if self._server is not None:
            server, self._server = self._server, None
            if self.mode == "werkzeug":
                server.stop()
            else:
                server.close()
                server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        self.url = None

    def __enter__(self) -> "EmbeddedAws":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def connect(spec: BackendSpec) -> tuple[Cloud, EmbeddedAws | None]:
    """A Cloud for the spec; for ``embedded`` also the server to stop at the end."""
    if spec.kind == "embedded":
        server = EmbeddedAws(spec.region).start()
        return server.cloud(), server
    return Cloud(spec), None
