"""Run the router as its own process: ``python -m pipeline.router --spec FILE``.

Layer 1 is a service of its own in the architecture; run this way it does its
CPU work beside the workers rather than under their interpreter lock.  The
spec (JSON, written by :meth:`pipeline.stack.Stack.router_spec`) holds what a
deployed router is configured with: the fabric config, the AWS endpoint, the
API key digests (never the keys), the node catalog the workflows are
validated against, the delivery key and edge URL, and the pool sizes the ETA
divides by.  The router finds the fabric's queues, table and buckets itself
(:func:`pipeline.provision.discover`), as a separately deployed one would.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def build(spec: dict[str, Any]):
    """The router's service and app from a spec; ``(service, app, audit)``."""
    from cryptography.hazmat.primitives import serialization

    from comfyfab.cloud import BackendSpec, Cloud
    from comfyfab.config import FabricConfig
    from compliance import phi
    from pipeline.audit import AuditLog
    from pipeline.delivery import CookieSigner, KeyPair
    from pipeline.jobs import JobStore
    from pipeline.provision import discover
    from pipeline.queues import JobQueues

    from .app import create_app
    from .service import RouterService

    cfg = FabricConfig.model_validate(spec["config"])
    cloud = Cloud(BackendSpec(**spec["backend"]))
    resources = discover(cloud, cfg)
    audit = AuditLog(cloud, cfg, source="router", flush_interval_s=float(spec.get("audit_flush_s", 1.0)))
    pools = {t: int(n) for t, n in spec.get("pool_sizes", {}).items()}
    catalog = spec["catalog"]
    service = RouterService(
        cfg=cfg, cloud=cloud, store=JobStore(cloud, resources.table_name),
        queues=JobQueues.from_resources(cloud, cfg, resources), audit=audit,
        api_keys=dict(spec["api_keys"]), object_info=lambda: catalog,
        bucket_of={t: r.bucket for t, r in resources.tenants.items()},
        pool_size=lambda t: pools.get(t, cfg.fleet.warm_realtime_workers))
    key = spec.get("cookie_key")
    if key and spec.get("edge_url"):
        private = serialization.load_pem_private_key(key["pem"].encode(), password=None)
        service.cookie_signer, service.edge_url = CookieSigner(KeyPair(key["key_id"], private)), spec["edge_url"]
    phi.engine()  # the PHI gate's analyzer, built before the first job
    service.watch_depths()
    return service, create_app(service), audit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.router",
                                     description="The inference router (Layer 1) as its own process.")
    parser.add_argument("--spec", type=Path, required=True, help="JSON written by Stack.router_spec()")
    parser.add_argument("--listen", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    parser.add_argument("--announce", action="store_true",
                        help="print the port as one JSON line and exit when stdin closes (comfyfab.child)")
    args = parser.parse_args(argv)
    try:
        spec = json.loads(args.spec.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the router spec {args.spec}: {exc}", file=sys.stderr)
        return 2
    from comfyfab.child import ready
    from comfyfab.serve import ServerThread

    _, app, audit = build(spec)
    server = ServerThread(app, host=args.listen, port=args.port, name="router").start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ready(server.port, args.announce, f"router at {server.url}", on_exit=audit.close)
    stop.wait()
    server.stop()
    audit.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
