"""``comfyfab demo``: a user's first five minutes.

Starts the embedded AWS, provisions the first tenants of the config, starts
the router, one ComfyUI stand-in per tenant and the warm pools, then submits
a mix of jobs across the three priority classes, plus a payload with PHI and
a cross-tenant attempt (both must be refused), waits with a progress bar and
prints what happened to every job and where its PNG is.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from comfyfab.cloud import BackendSpec
from comfyfab.config import PRIORITY_ORDER, FabricConfig

from .client import RouterClient
from .models import from_iso
from .stack import Stack

PROMPTS = ["a lighthouse on a cliff at dawn, oil painting", "product shot of a ceramic mug, studio light",
           "isometric city block, soft colours", "macro photo of a leaf with dew", "a red bicycle in the rain"]


@dataclass
class Submitted:
    tenant: str
    priority: str
    job_id: str
    t0: float
    code: int
    status: str = "queued"
    latency_s: float | None = None
    where: str = ""
    local: str = ""
    kms: str = ""


def _seconds_between(start: str, end: str | None) -> float | None:
    if not end:
        return None
    return (from_iso(end) - from_iso(start)).total_seconds()


def demo_job(priority: str, seed: int, prompt: str, tenant: str | None = None) -> dict:
    from pipeline.comfy.workflows import txt2img

    job = {"jobId": str(uuid.uuid4()), "priority": priority, "resolution": [64, 64], "seed": seed,
           "model": "tiny-sd:1", "workflow": txt2img(prompt, seed=seed, steps=4, width=64, height=64)}
    if tenant:
        job["tenantId"] = tenant
    return job


def run_demo(cfg: FabricConfig, backend: BackendSpec, tenants: int, jobs_per_tenant: int, engine: str,
             out: Path) -> int:
    console = Console(width=None if Console().is_terminal else 140)
    cfg = cfg.first_tenants(tenants)
    rng = random.Random(7)
    t_start = time.monotonic()
    with Stack(cfg, backend=backend, engine=engine,
               progress=lambda m: console.print(f"[dim]• {m}[/]")) as stack:
        clients = {t.id: RouterClient(stack.router_url, stack.api_keys[t.id]) for t in cfg.tenants}
        subs: list[Submitted] = []
        for i in range(jobs_per_tenant):
            for t in cfg.tenants:
                prio = PRIORITY_ORDER[i % 3]
                job = demo_job(prio, seed=rng.randrange(2**31), prompt=rng.choice(PROMPTS))
                r = clients[t.id].submit(job)
                subs.append(Submitted(t.id, prio, job["jobId"], time.monotonic(), r.status_code,
                                      status="queued" if r.status_code == 202 else f"HTTP {r.status_code}"))
        first, second = cfg.tenants[0].id, cfg.tenants[-1].id

        console.print("\n[bold]Refusals the fabric must make[/]")
        phi = demo_job("realtime", 1, "portrait for patient John Doe, DOB: 04/12/1961, MRN 00482913")
        r = clients[first].submit(phi)
        console.print(f"  PHI in a prompt            → HTTP {r.status_code} {r.json().get('error')}: "
                      f"{[(f['field'], f['entity']) for f in r.json().get('findings', [])]}")
        if len(cfg.tenants) > 1:
            r = clients[first].submit(demo_job("standard", 2, "a cat", tenant=second))
            console.print(f"  {first} submits as {second} → HTTP {r.status_code} {r.json().get('error')}")
            r = clients[second].result(subs[0].job_id)
            console.print(f"  {second} reads {first}'s result → HTTP {r.status_code} {r.json().get('error')}")
        r = httpx.post(f"{stack.router_url}/v1/jobs", content=b"{not json",
                       headers={"Authorization": f"Bearer {stack.api_keys[first]}"})
        console.print(f"  malformed JSON             → HTTP {r.status_code} {r.json().get('error')}\n")

        accepted = [s for s in subs if s.code == 202]
        out.mkdir(parents=True, exist_ok=True)
        with Progress(TextColumn("jobs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task("jobs", total=len(accepted))
            pending = list(accepted)
            deadline = time.monotonic() + 600
            while pending and time.monotonic() < deadline:
                for s in list(pending):
                    body = clients[s.tenant].status(s.job_id).json()
                    if body["status"] in ("succeeded", "failed"):
                        s.status = body["status"]
                        s.latency_s = _seconds_between(body["createdAt"], body.get("finishedAt"))
                        if s.status == "succeeded":
                            res = clients[s.tenant].result(s.job_id).json()["outputs"][0]
                            s.where = f"s3://{stack.resources.tenants[s.tenant].bucket}/{res['key']}"
                            s.kms = stack.store.get(s.job_id).kmsKeyId or ""
                            local = out / s.tenant / f"{s.job_id[:8]}.png"
                            local.parent.mkdir(parents=True, exist_ok=True)
                            local.write_bytes(httpx.get(res["url"]).content)
                            s.local = str(local)
                        pending.remove(s)
                        bar.advance(task)
                time.sleep(0.1)

        table = Table(title=f"comfyfab demo — {len(accepted)} jobs, {len(cfg.tenants)} tenants, "
                            f"backend {stack.cloud.describe()}",
                      caption="latency: accepted by the router → output stored in S3 (the job record's timestamps)")
        for col in ("job", "tenant", "class", "status", "latency", "output object", "KMS key"):
            table.add_column(col, no_wrap=True)
        for s in sorted(subs, key=lambda s: (s.tenant, PRIORITY_ORDER.index(s.priority))):
            bucket, _, key = s.where.removeprefix("s3://").partition("/")
            table.add_row(s.job_id[:8], s.tenant, s.priority, s.status,
                          f"{s.latency_s:.2f}s" if s.latency_s is not None else "-",
                          f"s3://{bucket}/…/{key.rsplit('/', 1)[-1]}" if s.where else "",
                          s.kms.split("/")[-1][:8] + "…" if s.kms else "")
        console.print(table)
        ok = sum(s.status == "succeeded" for s in accepted)
        console.print(f"PNGs fetched through the presigned URLs: {out}/<tenant>/<job>.png")
        console.print(f"{ok}/{len(accepted)} succeeded in {time.monotonic() - t_start:.1f}s. "
                      f"Audit events written: {stack.audit.flush() + stack.audit.written}.")
        for c in clients.values():
            c.close()
        return 0 if ok == len(accepted) else 1
