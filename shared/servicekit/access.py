"""Asking the groups service whether the calling staff member reaches a customer.

The one place every service checks "may this staff member see this customer?":
``GET {groups}/v1/access/customers/{id}`` with the caller's own bearer token and
a short timeout. 200 is yes, 404 is no; anything else (groups down, slow, or
answering something unexpected) raises :class:`AccessUnavailable`, which the kit
answers as 503: never a silent allow.

    access = GroupsAccess.from_env()                 # once, at start-up
    app.state.groups_access = access                 # for the dependency below
    if not await access.reaches(token, customer_id):  # in a use case or a route
        raise NotFound("customer not found")

or, on a route with a ``customer_id`` path parameter::

    @router.get("/v1/customers/{customer_id}",
                dependencies=[Depends(require_customer_access())])
"""

from __future__ import annotations

import os
import uuid
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request

from shared.servicekit.auth import Principal, current_principal
from shared.servicekit.errors import NotFound
from shared.servicekit.http import PROBLEM_BASE, REQUEST_ID_HEADER, Problem
from shared.servicekit.logs import correlation_id

DEFAULT_URL = "http://127.0.0.1:8102"
DEFAULT_TIMEOUT = 1.0
KEEPALIVE_SECONDS = 4.0


class AccessUnavailable(Problem):
    """Groups could not be asked (down, too slow, or an unexpected answer): 503."""

    def __init__(self, why: str, what: str = "this customer") -> None:
        super().__init__(503, "Access check unavailable",
                         f"who may see {what} cannot be checked now: {why}",
                         type_=PROBLEM_BASE + "access-unavailable",
                         headers={"Retry-After": "5"})


class GroupsAccess:
    """A pooled client for groups' access check (one per process)."""

    def __init__(self, base_url: str = DEFAULT_URL, *, timeout: float = DEFAULT_TIMEOUT,
                 client: httpx.AsyncClient | None = None, auth: httpx.Auth | None = None,
                 ) -> None:
        # auth: a NarrowedBearer (shared.servicekit.delegation): groups gets the caller's
        # token narrowed to groups alone, never one it could replay elsewhere
        self._own = client is None
        self._client = client or httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=httpx.Timeout(timeout), auth=auth,
            # kept alive for less than groups' own 5 s (uvicorn's), so a connection is
            # dropped here before groups closes it under a request
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=50,
                                keepalive_expiry=KEEPALIVE_SECONDS))

    async def _get(self, path: str, headers: dict[str, str]) -> httpx.Response:
        """A GET, asked once more when a kept-alive connection turns out closed (the
        race between reusing it and groups closing it): a read is safe to repeat."""
        try:
            return await self._client.get(path, headers=headers)
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            return await self._client.get(path, headers=headers)

    @classmethod
    def from_env(cls, auth: httpx.Auth | None = None) -> GroupsAccess:
        """CSC_GROUPS_URL (default http://127.0.0.1:8102) and CSC_GROUPS_TIMEOUT_SECONDS
        (default 1.0)."""
        return cls(os.environ.get("CSC_GROUPS_URL", DEFAULT_URL),
                   timeout=float(os.environ.get("CSC_GROUPS_TIMEOUT_SECONDS",
                                                DEFAULT_TIMEOUT)), auth=auth)

    async def explain(self, token: str, customer_id: uuid.UUID) -> dict[str, Any] | None:
        """Groups' answer (``{"customer_id", "via": [...]}``), None when the staff member
        does not reach the customer; AccessUnavailable when groups cannot say."""
        headers = {"Authorization": f"Bearer {token}"}
        request_id = correlation_id.get()
        if request_id:  # so groups' logs join the caller's
            headers[REQUEST_ID_HEADER] = request_id
        try:
            resp = await self._get(f"/v1/access/customers/{customer_id}", headers)
        except httpx.TimeoutException:
            raise AccessUnavailable("the groups service did not answer in time") from None
        except httpx.HTTPError as exc:
            raise AccessUnavailable(
                f"the groups service is unreachable ({type(exc).__name__})") from None
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise AccessUnavailable(f"the groups service answered {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            raise AccessUnavailable("the groups service answered something unreadable"
                                    ) from None
        if not isinstance(body, dict) or not body.get("via"):
            raise AccessUnavailable("the groups service answered something unreadable")
        return body

    async def reaches_group(self, token: str, group_id: uuid.UUID) -> bool:
        """Whether the staff member reaches a group (owner or co-owner of it or a parent,
        program staff, IWDS access, admin): groups' ``GET /v1/groups/{id}`` answers 200
        or 404; anything else raises AccessUnavailable (never a silent allow)."""
        what = "this group's messages"
        try:
            resp = await self._get(f"/v1/groups/{group_id}",
                                   {"Authorization": f"Bearer {token}"})
        except httpx.TimeoutException:
            raise AccessUnavailable("the groups service did not answer in time",
                                    what) from None
        except httpx.HTTPError as exc:
            raise AccessUnavailable(
                f"the groups service is unreachable ({type(exc).__name__})", what) from None
        if resp.status_code == 404:
            return False
        if resp.status_code != 200:
            raise AccessUnavailable(f"the groups service answered {resp.status_code}", what)
        return True

    async def reaches(self, token: str, customer_id: uuid.UUID) -> bool:
        """True (200) or False (404); AccessUnavailable otherwise."""
        return await self.explain(token, customer_id) is not None

    async def require(self, token: str, customer_id: uuid.UUID) -> None:
        """NotFound (the kit's 404) unless the staff member reaches the customer."""
        if not await self.reaches(token, customer_id):
            raise NotFound("customer not found")

    async def aclose(self) -> None:
        if self._own:
            await self._client.aclose()


def bearer_token(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2].strip()


def require_customer_access(param: str = "customer_id") -> Any:
    """A FastAPI dependency for a route with a customer id path parameter: staff must
    reach the customer (404 otherwise, 503 when groups cannot be asked); a customer
    passes only for their own id. Needs ``app.state.groups_access`` (a GroupsAccess)."""
    async def dependency(request: Request,
                         principal: Annotated[Principal, Depends(current_principal)]
                         ) -> Principal:
        raw = request.path_params.get(param)
        try:
            customer_id = uuid.UUID(str(raw))
        except ValueError:
            raise NotFound("customer not found") from None
        if principal.kind == "customer":
            if principal.subject != str(customer_id):
                raise NotFound("customer not found")
            return principal
        access: GroupsAccess = request.app.state.groups_access
        await access.require(bearer_token(request), customer_id)
        return principal

    return dependency
