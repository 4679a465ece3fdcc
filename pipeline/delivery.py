"""Layer 5, signed-cookie delivery through a CDN edge.

The router hands an authenticated tenant three cookies in CloudFront's
format (``CloudFront-Policy``, ``CloudFront-Signature``,
``CloudFront-Key-Pair-Id``): a custom policy allowing ``<edge>/<tenant>/*``
until an expiry, signed with RSA-SHA1 by the distribution's key pair.  The
edge (:func:`create_edge_app`, a stand-in for the CloudFront distribution
with origin access control) verifies the cookies on every request and only
then reads the object from the tenant's bucket with its own credentials.
Nothing is cached: every answer says ``Cache-Control: no-store, no-cache``.

The key pair is generated per run; no key material lives in the repository.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import Any, Mapping

from botocore.exceptions import ClientError
from botocore.signers import CloudFrontSigner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

COOKIE_POLICY, COOKIE_SIGNATURE, COOKIE_KEY = "CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"


class DeliveryDenied(Exception):
    """The edge refuses a request; the message says why (never which objects exist)."""


def _b64(data: bytes) -> str:
    """CloudFront's URL-safe base64: '+' → '-', '=' → '_', '/' → '~'."""
    return base64.b64encode(data).decode().replace("+", "-").replace("=", "_").replace("/", "~")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


@dataclass(frozen=True)
class KeyPair:
    """A distribution's trusted key pair (public key id + RSA key)."""

    key_id: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, key_id: str) -> "KeyPair":
        return cls(key_id, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)


class CookieSigner:
    """Issues signed cookies for one resource pattern."""

    def __init__(self, key: KeyPair):
        self.key = key
        self._signer = CloudFrontSigner(key.key_id, self._sign)

    def _sign(self, message: bytes) -> bytes:
        return self.key.private_key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # CloudFront's algorithm

    def cookies(self, resource: str, expires_at: datetime) -> dict[str, str]:
        policy = self._signer.build_policy(resource, expires_at).encode()
        return {COOKIE_POLICY: _b64(policy), COOKIE_SIGNATURE: _b64(self._sign(policy)),
                COOKIE_KEY: self.key.key_id}


class CookieVerifier:
    """Checks cookies the way the edge does: known key, valid signature, resource match, not expired."""

    def __init__(self, public_keys: Mapping[str, Any]):
        self.public_keys = dict(public_keys)

    def verify(self, cookies: Mapping[str, str], url: str, now: float | None = None) -> None:
        missing = [c for c in (COOKIE_POLICY, COOKIE_SIGNATURE, COOKIE_KEY) if not cookies.get(c)]
        if missing:
            raise DeliveryDenied(f"missing signed cookies: {', '.join(missing)}")
        key = self.public_keys.get(cookies[COOKIE_KEY])
        if key is None:
            raise DeliveryDenied("unknown key pair id")
        try:
            policy_bytes = _unb64(cookies[COOKIE_POLICY])
            key.verify(_unb64(cookies[COOKIE_SIGNATURE]), policy_bytes, padding.PKCS1v15(), hashes.SHA1())
        except (InvalidSignature, ValueError):
            raise DeliveryDenied("signature does not match the policy") from None
        try:
            statement = json.loads(policy_bytes)["Statement"][0]
            resource = statement["Resource"]
            expires = statement["Condition"]["DateLessThan"]["AWS:EpochTime"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise DeliveryDenied("malformed policy") from None
        if (time.time() if now is None else now) >= expires:
            raise DeliveryDenied("signed cookies expired")
        if not fnmatchcase(url, resource):
            raise DeliveryDenied("the cookies do not cover this path")


def create_edge_app(cloud: Any, verifier: CookieVerifier, bucket_of: Mapping[str, str], base_url: str,
                    cache_control: str) -> FastAPI:
    """The CDN edge: ``GET /{tenant}/{key}`` serves the object only with valid cookies for that URL."""
    app = FastAPI(title="comfyfab delivery edge")
    s3 = cloud.client("s3")
    headers = {"Cache-Control": cache_control}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/{tenant}/{key:path}")
    def get_object(tenant: str, key: str, request: Request) -> Response:
        url = f"{base_url}/{tenant}/{key}"
        try:
            verifier.verify(request.cookies, url)
        except DeliveryDenied as exc:
            return JSONResponse({"error": "access_denied", "message": str(exc)}, status_code=403, headers=headers)
        bucket = bucket_of.get(tenant)
        if bucket is None:
            return JSONResponse({"error": "not_found", "message": "no such object"}, status_code=404, headers=headers)
        try:
            obj = s3.get_object(Bucket=bucket, Key=f"{tenant}/{key}")
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return JSONResponse({"error": "not_found", "message": "no such object"}, status_code=404,
                                    headers=headers)
            raise
        return Response(obj["Body"].read(), media_type=obj.get("ContentType", "application/octet-stream"),
                        headers=headers)

    return app


def cookie_header_attrs(expires_at: datetime, path: str) -> dict[str, Any]:
    """Attributes for Set-Cookie: scoped to the tenant path, secure, not readable from scripts."""
    return {"expires": expires_at.astimezone(timezone.utc), "path": path, "secure": True, "httponly": True,
            "samesite": "strict"}
