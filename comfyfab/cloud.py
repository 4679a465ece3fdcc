"""The one boto3 client factory.

Every AWS call in comfyfab goes through a :class:`Cloud`.  The three backends
differ only in where the clients point:

* ``embedded`` -- moto's ThreadedMotoServer started in this process on a free
  loopback port.  Real HTTP and real botocore serialisation, no network.
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


class EmbeddedAws:
    """moto's server on a free loopback port inside this process.

    State lives in moto's in-memory backends; :meth:`reset` empties them.
    """

    def __init__(self, region: str = "us-east-1", host: str = "127.0.0.1"):
        self.region = region
        self.host = host
        self._server = None
        self.url: str | None = None

    def start(self) -> "EmbeddedAws":
        from moto.server import ThreadedMotoServer

        from . import moto_fast

        moto_fast.apply()  # SendMessage in O(1) rather than O(queue length); see moto_fast
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def cloud(self) -> Cloud:
        if self.url is None:
            raise BackendError("embedded AWS is not started")
        return Cloud(BackendSpec(kind="embedded", region=self.region, endpoint_url=self.url))

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

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
