"""Idempotent provisioning of the whole fabric from the config, through the Cloud factory.

``provision(cloud, cfg)`` creates (or converges) every resource the
architecture names -- per tenant a KMS key, an output bucket, FIFO queues and
DLQs, a private VPC with its security groups, NACL, endpoints, peering and
flow logs, a worker role and alarms; shared, the jobs table, the alarm topic,
the router network and role and the audit trail -- and returns their ids as a
:class:`FabricResources`.  ``discover(cloud, cfg)`` finds them without
creating anything.  One module per service; every resource is tagged
``comfyfab:fabric`` (and ``comfyfab:tenant`` when it belongs to a tenant).
"""

from .errors import MissingResourceError, ProvisioningError
from .fabric import discover, provision
from .resources import FabricResources, TenantResources
from .s3 import BucketPolicyMode, attached_policy, canonical_bucket_policy, default_policy_mode

__all__ = [
    "BucketPolicyMode", "FabricResources", "MissingResourceError", "ProvisioningError", "TenantResources",
    "attached_policy", "canonical_bucket_policy", "default_policy_mode", "discover", "provision",
]
