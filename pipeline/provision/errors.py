"""Errors of provisioning and discovery."""

from __future__ import annotations


class ProvisioningError(RuntimeError):
    """Provisioning or discovery could not complete; the message names the step and resource."""


class MissingResourceError(ProvisioningError):
    """Discovery found the fabric incomplete; ``missing`` lists every absent resource by name."""

    def __init__(self, missing: list[str] | tuple[str, ...]):
        self.missing = tuple(missing)
        shown = "\n  ".join(self.missing)
        super().__init__(f"the fabric is not provisioned; missing {len(self.missing)} resource(s):\n  {shown}")
