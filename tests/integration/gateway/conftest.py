"""The gateway's stack (identity, enrollment, gateway over real HTTP) as the browser
tests start it."""

from tests.browser.conftest import gateway_stack

__all__ = ["gateway_stack"]
