"""The whole pipeline in one process: backend, provisioning, executors, router, fleet.

``Stack`` is what ``comfyfab demo``, ``comfyfab up``, the benchmarks and the
integration tests start.  The layers talk over real HTTP on loopback: clients
to the router (uvicorn), workers to ComfyUI-compatible executors (the
stand-in, or a real ComfyUI given by URL), everything to AWS through the
client factory (embedded moto server, LocalStack or AWS).
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from comfyfab.child import ChildServer
from comfyfab.cloud import BackendSpec, Cloud, EmbeddedAws, connect
from comfyfab.config import FabricConfig
from comfyfab.policy import PollPolicy, ScaleDecision
from comfyfab.serve import ServerThread, freeze_startup_heap
from compliance import phi

from .audit import AuditLog
from .fleet import FleetManager
from .jobs import JobStore
from .queues import JobQueues
from .router.app import create_app
from .router.service import RouterService, key_digest
from .worker import TenantTarget, Worker


@dataclass
class Stack:
    """A running fabric. Use as a context manager or call ``start``/``stop``."""

    cfg: FabricConfig
    backend: BackendSpec | None = None
    cloud: Cloud | None = None                  # reuse an existing backend (tests) instead of ``backend``
    engine: str = "torch"                       # executor engine: torch (real) or noop
    executor_urls: dict[str, str] | None = None  # tenant -> external ComfyUI URL; the stand-in when None
    fault: Callable[[dict], str | None] | None = None
    time_scale: float = 1.0
    cold_starts: bool = True
    api_keys: dict[str, str] = field(default_factory=dict)  # tenant -> key; generated when missing
    progress: Callable[[str], None] | None = None
    exec_timeout_s: float = 600.0
    autoscale: bool = True                      # run the autoscaler's control loop
    warm_workers: bool = True                   # start the warm pools (without autoscaling too)
    router_port: int = 0                        # 0: a free port
    executor_processes: bool = False            # stand-ins as child processes (as ComfyUI runs); no ``fault`` then
    router_process: bool = False                # the router as a child process (as Layer 1 is deployed)
    audit_flush_s: float = 1.0                  # how often the router's audit events are shipped

    def __post_init__(self) -> None:
        self._embedded: EmbeddedAws | None = None
        self._executors: list[Any] = []
        self._router: ServerThread | None = None
        self._router_child: ChildServer | None = None
        self._router_spec_dir: str | None = None
        self.fleet: FleetManager | None = None
        self.audit: AuditLog | None = None
        self.events: list[tuple[float, str, str, dict]] = []

    def _say(self, msg: str) -> None:
        if self.progress:
            self.progress(msg)

    # -- start ---------------------------------------------------------------
    def start(self) -> "Stack":
        from pipeline.comfy.client import ComfyClient
        from pipeline.comfy.engines import TorchOptions
        from pipeline.comfy.server import ComfyServer
        from pipeline.provision import provision

        if self.cloud is None:
            self._say(f"starting the {self.backend.kind if self.backend else 'embedded'} AWS backend")
            self.cloud, self._embedded = connect(self.backend or BackendSpec(kind="embedded", region=self.cfg.region))
            if self._embedded is not None:
                self._say(f"embedded AWS: {self._embedded.describe()} at {self._embedded.url}")
        self._say("provisioning the fabric (KMS, S3, SQS, DynamoDB, VPC, alarms, audit)")
        self.resources = provision(self.cloud, self.cfg, progress=self.progress)

        urls = dict(self.executor_urls or {})
        if self.executor_processes and self.fault is not None:
            raise ValueError("fault injection needs the stand-ins in this process (executor_processes=False)")
        own = [t.id for t in self.cfg.tenants if t.id not in urls]  # the stand-ins started here
        for tid in own:
            if self.executor_processes:
                self._say(f"starting the ComfyUI stand-in for {tid} as a process ({self.engine} engine)")
                urls[tid] = self._start_executor_process()
            else:
                self._say(f"starting the ComfyUI stand-in for {tid} ({self.engine} engine)")
                # One torch thread per executor: several run side by side on few cores.
                server = ComfyServer(engine=self.engine, fault=self.fault,
                                     options=TorchOptions(cpu_threads=1 if self.engine == "torch" else None)).start()
                self._executors.append(server)
                urls[tid] = server.url
        self.executor_urls = urls
        if self.engine == "torch" and own:
            # Warm pools hold their model in memory: load it before the first job, not during it.
            self._say("loading the model into each stand-in (warm pool)")
            from pipeline.comfy.workflows import txt2img
            for url in {urls[tid] for tid in own}:
                client = ComfyClient(url)
                try:
                    client.run(txt2img("warm-up", seed=0, steps=1, filename_prefix="warmup"), timeout=300)
                finally:
                    client.close()
        client = ComfyClient(next(iter(urls.values())))
        try:
            catalog = client.object_info()  # the node catalog the router validates workflows against
        finally:
            client.close()

        self.store = JobStore(self.cloud, self.resources.table_name)
        self.queues = JobQueues.from_resources(self.cloud, self.cfg, self.resources)
        self.audit = AuditLog(self.cloud, self.cfg, source="router", flush_interval_s=self.audit_flush_s)
        for t in self.cfg.tenants:
            self.api_keys.setdefault(t.id, f"cfk_{t.id}_{secrets.token_urlsafe(18)}")

        self.fleet = FleetManager(self.cfg, self.queues, self._make_worker, time_scale=self.time_scale,
                                  cold_starts=self.cold_starts)
        self.service = RouterService(
            cfg=self.cfg, cloud=self.cloud, store=self.store, queues=self.queues, audit=self.audit,
            api_keys={key_digest(k): t for t, k in self.api_keys.items()},
            object_info=lambda: catalog,
            bucket_of={t: r.bucket for t, r in self.resources.tenants.items()},
            pool_size=self.fleet.pool_size)
        self._start_edge()
        if self.router_process:
            self._start_router_process(catalog)
        else:
            phi.engine()  # build the PHI gate's analyzer now, not on the first job
            self._depth_watch = self.service.watch_depths()
            self._router = ServerThread(create_app(self.service), port=self.router_port, name="router").start()
        self._say(f"router listening on {self.router_url}")
        if self.autoscale:
            self.fleet.start()
        elif self.warm_workers:
            for t in self.cfg.tenants:
                self.fleet.apply(t.id, ScaleDecision(add=self.fleet.policies[t.id].min_workers), warm=True)
        self._say(f"{sum(len(p) for p in self.fleet.pools.values())} warm workers polling")
        freeze_startup_heap()
        return self

    def _start_executor_process(self) -> str:
        import tempfile

        out = tempfile.mkdtemp(prefix="comfyfab-standin-")
        child = ChildServer("pipeline.comfy", ["--engine", self.engine, "--output-dir", out,
                                               "--cpu-threads", "1"], "the ComfyUI stand-in")
        child.start()
        child.output_dir = out  # removed when the stack stops
        self._executors.append(child)
        return f"http://127.0.0.1:{child.port}"

    def router_spec(self, catalog: dict) -> dict:
        """What ``python -m pipeline.router`` is configured with (API key digests, not keys)."""
        from cryptography.hazmat.primitives import serialization

        pem = self._cookie_key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return {"config": self.cfg.model_dump(mode="json"),
                "backend": dataclasses.asdict(self.cloud.spec),
                "api_keys": {key_digest(k): t for t, k in self.api_keys.items()},
                "catalog": catalog,
                "pool_sizes": {t.id: self.fleet.policies[t.id].min_workers for t in self.cfg.tenants},
                "cookie_key": {"key_id": self._cookie_key.key_id, "pem": pem.decode()},
                "edge_url": self.service.edge_url,
                "audit_flush_s": self.audit_flush_s}

    def _start_router_process(self, catalog: dict) -> None:
        import json
        import os
        import tempfile

        self._router_spec_dir = tempfile.mkdtemp(prefix="comfyfab-router-")
        path = os.path.join(self._router_spec_dir, "router.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # holds the delivery key
        with os.fdopen(fd, "w") as fh:
            json.dump(self.router_spec(catalog), fh)
        self._say("starting the router as a process")
        self._router_child = ChildServer("pipeline.router", ["--spec", path], "the router")
        self._router_child.start()

    def _start_edge(self) -> None:
        """The CDN edge stand-in and the router's cookie signer share one generated key pair."""
        from .delivery import CookieSigner, CookieVerifier, KeyPair, create_edge_app

        key = KeyPair.generate(f"K{secrets.token_hex(6).upper()}")
        edge = ServerThread(None, name="edge")  # bound first: the cookies name the edge's URL
        edge.app = create_edge_app(self.cloud, CookieVerifier({key.key_id: key.private_key.public_key()}),
                                   {t: r.bucket for t, r in self.resources.tenants.items()}, edge.url,
                                   self.cfg.delivery.cache_control)
        self._edge = edge.start()
        self._cookie_key = key
        self.service.cookie_signer, self.service.edge_url = CookieSigner(key), edge.url
        self._say(f"delivery edge (signed cookies) on {edge.url}")

    def _make_worker(self, tenant_id: str, name: str) -> Worker:
        tr = self.resources.tenants[tenant_id]
        return Worker(name=name, tenant_id=tenant_id, cfg=self.cfg, cloud=self.cloud, queues=self.queues,
                      store=self.store, target=TenantTarget(bucket=tr.bucket, key_arn=tr.key_arn),
                      executor_url=self.executor_urls[tenant_id], poll=PollPolicy(),
                      time_scale=self.time_scale, exec_timeout_s=self.exec_timeout_s,
                      on_event=lambda kind, job, extra: self.events.append((time.time(), kind, job, extra)))

    @property
    def router_url(self) -> str:
        if self._router_child is not None:
            return f"http://127.0.0.1:{self._router_child.port}"
        assert self._router is not None, "stack not started"
        return self._router.url

    @property
    def router_pid(self) -> int | None:
        """The router's process id (this process unless ``router_process``)."""
        import os

        return self._router_child.pid if self._router_child is not None else os.getpid()

    # -- stop ----------------------------------------------------------------
    def stop(self) -> None:
        if self.fleet:
            self.fleet.stop()
        if self._router:
            self._router.stop()
            self._depth_watch.set()
        if self._router_child is not None:
            self._router_child.stop()
            shutil.rmtree(self._router_spec_dir, ignore_errors=True)
        for s in self._executors:
            s.stop()
            if isinstance(s, ChildServer):
                shutil.rmtree(s.output_dir, ignore_errors=True)
        if getattr(self, "_edge", None):
            self._edge.stop()
        if self.audit:
            self.audit.close()
        if self._embedded:
            self._embedded.stop()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
