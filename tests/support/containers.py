"""The same servers from Docker images, where a Docker engine answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.stack import Servers


@contextmanager
def container_servers() -> Iterator[Servers]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:17-alpine", driver=None) as pg, KafkaContainer(
        "apache/kafka:3.9.0"
    ).with_kraft() as kafka:
        base = pg.get_connection_url()  # postgresql://user:pass@host:port/db
        root = base.rsplit("/", 1)[0]
        yield Servers(pg_dsn=lambda db: f"{root}/{db}", bootstrap=kafka.get_bootstrap_server())
