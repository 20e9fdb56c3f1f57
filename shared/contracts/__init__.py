"""Request and answer models of the synchronous calls between services, shared by the
caller (its client) and the callee (its routes), so the two cannot drift apart.
tests/contract runs each caller's client against the callee's real app."""
