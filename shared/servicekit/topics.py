"""The broker's name for a topic.

Events name their topic (``identity.accounts.v1``) and the outbox keeps that
name; the broker sees ``CSC_TOPIC_PREFIX`` + the name. Production leaves the
prefix empty. The test suite gives each test its own prefix, so a test's
consumers never read an earlier test's events from the shared test broker.
"""

from __future__ import annotations

import os

PREFIX_VAR = "CSC_TOPIC_PREFIX"


def prefix() -> str:
    return os.environ.get(PREFIX_VAR, "")


def broker_topic(topic: str) -> str:
    """The name on the broker of the topic an event names."""
    return prefix() + topic


def logical_topic(name: str) -> str:
    """The topic an event names, from its name on the broker."""
    p = prefix()
    return name[len(p):] if p and name.startswith(p) else name
