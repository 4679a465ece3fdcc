"""What every provisioning step shares: the cloud, the config and the mode.

One :class:`Step` is passed through the service modules.  In ``create`` mode
(:func:`~pipeline.provision.provision`) a step that finds nothing creates it
and converges the settings of what it found; in discovery mode
(:func:`~pipeline.provision.discover`) it only reads, and an absent resource
raises :class:`~pipeline.provision.errors.MissingResourceError` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from botocore.exceptions import ClientError

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from .errors import MissingResourceError


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass
class Step:
    """The shared state of one provisioning or discovery run."""

    cloud: Cloud
    cfg: FabricConfig
    create: bool
    progress: Callable[[str], None] | None = None
    unsupported: list[str] = field(default_factory=list)
    _account: str | None = field(default=None, repr=False)

    def client(self, service: str) -> Any:
        return self.cloud.client(service)

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    @property
    def region(self) -> str:
        return self.cloud.spec.region

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    @property
    def account(self) -> str:
        if self._account is None:
            self._account = self.cloud.account_id()
        return self._account

    def not_supported(self, operation: str, exc: ClientError | str) -> None:
        """Record that the backend does not implement ``operation`` (e.g. DynamoDB Local and PITR).

        Only for settings a backend may lack without the fabric being unusable; the
        operation is listed in ``FabricResources.unsupported`` and in a progress
        message, so a compliance scan of that backend reports the setting as missing.
        """
        why = exc if isinstance(exc, str) else error_code(exc)
        self.unsupported.append(f"{operation}: {why}")
        self.say(f"the {self.cloud.spec.kind} backend does not implement {operation} ({why}); skipped")

    def absent(self, what: str) -> MissingResourceError:
        """The error to raise when ``what`` does not exist; in create mode callers create instead."""
        return MissingResourceError([what])

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if region else ''}:"
                f"{self.account if account else ''}:{resource}")
