"""The groups service's HTTP routes (pinned paths), one module per feature (``groups``,
``invitations``, ``access``, ``messages``), each with its own router that the app
registers: parse, call a use case, shape the answer. Domain errors rise to the kit
(RFC 9457 problems)."""
