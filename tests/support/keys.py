"""A throwaway signing key pair for tests and local tools (never for production)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


@dataclass
class TestSigner:
    __test__ = False  # not a pytest class

    issuer: str = "csc-identity"
    audience: str = "csc"

    def __post_init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = uuid.uuid4().hex[:12]

    def jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "ES256"})
        return {"keys": [jwk]}

    def token(
        self,
        sub: str,
        *,
        kind: str = "staff",
        roles: list[str] | None = None,
        ttl: int = 900,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body = {
            "sub": sub, "kind": kind, "roles": roles or [], "iss": self.issuer,
            "aud": self.audience, "iat": now, "exp": now + ttl, **claims,
        }
        return self.sign(body)

    def sign(self, payload: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        """Sign exactly ``payload`` (no claims added): for tokens that must be wrong."""
        return jwt.encode(
            payload, self.key, algorithm="ES256", headers={"kid": self.kid, **(headers or {})}
        )
