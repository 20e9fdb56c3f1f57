"""A throwaway signing key pair for tests and local tools (never for production)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Request
from fastapi.responses import JSONResponse
from jwt.algorithms import ECAlgorithm

SERVICES = ("identity", "enrollment", "groups", "notify", "readiness", "sync-iwds", "gateway")


@dataclass
class TestSigner:
    __test__ = False  # not a pytest class

    issuer: str = "csc-identity"
    # every service, as identity's tokens name them by default (each service is its own
    # audience); a test wanting a narrower token passes aud=[...]
    audience: tuple[str, ...] = SERVICES

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
            "aud": list(self.audience), "iat": now, "exp": now + ttl,
            # a person's token names its sign-in session (a client's has none)
            **({"sid": str(uuid.uuid4())} if kind != "client" else {}), **claims,
        }
        return self.sign(body)

    def sign(self, payload: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        """Sign exactly ``payload`` (no claims added): for tokens that must be wrong."""
        return jwt.encode(
            payload, self.key, algorithm="ES256", headers={"kid": self.kid, **(headers or {})}
        )


def add_token_exchange(app: Any, signer: TestSigner) -> None:
    """Give a stand-in service (a FastAPI app) identity's token exchange (RFC 8693) for
    ``signer``'s tokens: a service under test that calls the stand-in narrows its
    caller's token here first (shared/servicekit/delegation.py). Point it here with
    ``CSC_TOKEN_URL=<stand-in>/v1/auth/token``."""
    @app.post("/v1/auth/token")
    async def exchange(request: Request) -> Any:
        form = await request.form()
        try:
            subject = jwt.decode(str(form.get("subject_token")), signer.key.public_key(),
                                 algorithms=["ES256"], issuer=signer.issuer,
                                 options={"verify_aud": False})
        except jwt.PyJWTError:
            return JSONResponse({"title": "Unauthorized"}, status_code=401)
        wanted = [str(a) for a in form.getlist("audience")]
        held = subject.get("aud") or []
        if not wanted or not set(wanted) <= set([held] if isinstance(held, str) else held):
            return JSONResponse({"title": "Unprocessable"}, status_code=422)
        now = int(time.time())
        exp = min(int(subject["exp"]), now + 300)
        token = signer.sign({**subject, "aud": wanted, "iat": now, "exp": exp})
        return {"access_token": token, "token_type": "bearer", "expires_in": exp - now,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}
