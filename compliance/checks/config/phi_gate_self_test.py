from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ... import phi
from ...inventory import Inventory

REQUIRED = ("SSN", "MRN", "DOB")
# Synthetic canaries (never real people): one per entity, each in its own field.
CANARIES = {
    "SSN": "patient ssn 123-45-6789",
    "MRN": "MRN: 00123456",
    "DOB": "DOB 04/12/1961",
    "PHONE": "call (212) 555-0147",
    "EMAIL": "jane.roe@example.com",
}


def phi_gate_self_test(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The ingestion gate is configured for the structured identifiers and actually finds each canary."""
    enabled = tuple(cfg.phi.entities)
    missing = [e for e in REQUIRED if e not in enabled]
    blind = []
    for entity in enabled:
        if entity in CANARIES:
            seen = {f.entity for f in phi.scan({"prompt": CANARIES[entity]}, enabled)}
            if entity not in seen:
                blind.append(entity)
    return [verdict(not missing and not blind, "phi.entities",
                    f"the PHI gate rejects {', '.join(enabled)}",
                    "the PHI gate " + "; ".join(
                        ([f"is not configured for {', '.join(missing)}"] if missing else [])
                        + ([f"misses its {', '.join(blind)} canary"] if blind else [])),
                    entities=list(enabled), required=list(REQUIRED), missed_canaries=blind)]
