"""What the benchmarks share: synthetic people, keys, percentiles, waiting for a service."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx

from shared.devstack.processes import LocalBroker, LocalPostgres, free_port

PASSWORD = "quiet harbor lantern morning 7"
CSC = str(Path(sys.executable).parent / "csc")

FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
    "Sarah", "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew",
    "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven",
    "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kenneth",
    "Carol", "Kevin", "Amanda", "Brian", "Dorothy", "George", "Melissa", "Timothy",
    "Deborah", "Ronald", "Stephanie", "Edward", "Rebecca", "Jason", "Sharon", "Jeffrey",
    "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen", "Gary", "Amy", "Nicholas", "Angela",
    "Eric", "Shirley", "Jonathan", "Anna", "Stephen", "Brenda", "Larry", "Pamela", "Justin",
    "Emma", "Scott", "Nicole", "Brandon", "Helen", "Benjamin", "Samantha", "Samuel",
    "Katherine", "Gregory", "Christine", "Alexander", "Debra", "Frank", "Rachel", "Patrick",
    "Carolyn", "Raymond", "Janet", "Jack", "Catherine", "Dennis", "Maria", "Jerry",
    "Heather", "Tyler", "Diane", "Aaron", "Ruth", "Jose", "Julie", "Adam", "Olivia",
    "Nathan", "Joyce", "Henry", "Virginia", "Douglas", "Victoria", "Zachary", "Kelly",
    "Peter", "Lauren", "Kyle", "Christina", "Ethan", "Joan", "Walter", "Evelyn", "Noah",
    "Judith", "Jeremy", "Megan", "Christian", "Andrea", "Keith", "Cheryl", "Roger",
    "Hannah", "Terry", "Jacqueline", "Gerald", "Martha", "Harold", "Gloria", "Sean",
    "Teresa", "Austin", "Ann", "Carl", "Sara", "Arthur", "Madison", "Lawrence", "Frances",
    "Dylan", "Kathryn", "Jesse", "Janice", "Jordan", "Jean", "Bryan", "Abigail", "Billy",
    "Alice", "Joe", "Julia", "Bruce", "Judy", "Gabriel", "Sophia", "Logan", "Grace",
    "Albert", "Denise", "Willie", "Amber", "Alan", "Doris", "Juan", "Marilyn", "Wayne",
    "Danielle", "Elijah", "Beverly", "Randy", "Isabella", "Roy", "Theresa", "Vincent",
    "Diana", "Ralph", "Natalie", "Eugene", "Brittany", "Russell", "Charlotte", "Bobby",
    "Marie", "Mason", "Kayla", "Philip", "Alexis", "Louis", "Lori", "Marcus", "Tyrone",
    "Darnell", "Andre", "Jamal", "Terrell", "Luis", "Carlos", "Miguel",
)
LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
    "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter",
    "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards",
    "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers",
    "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly",
    "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez",
    "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez",
)
SYLLABLES = (
    "ka", "ro", "mi", "sel", "dan", "ber", "tov", "li", "an", "ski", "wic", "ham", "ford",
    "ley", "ton", "ric", "os", "ell", "man", "berg",
)


def b64_key() -> str:
    """A random 32-byte key, base64 (SSN keys, data key)."""
    return base64.b64encode(os.urandom(32)).decode()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


# US-like: the hundred commonest surnames cover about three people in ten, Smith
# about one in a hundred; everyone else has one of ~170,000 rarer (made-up) names.
_COMMON_WEIGHTS = [1 / (rank + 10) for rank in range(1, len(LAST) + 1)]


def surname(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choices(LAST, weights=_COMMON_WEIGHTS)[0]
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def person(rng: random.Random) -> dict[str, str]:
    """First and last name, date of birth, and an SSN for seven people in ten."""
    dob = date(1945, 1, 1) + timedelta(days=rng.randrange(365 * 60))
    return {"first_name": rng.choice(FIRST), "last_name": surname(rng),
            "date_of_birth": dob.isoformat(), "ssn": ssn(rng) if rng.random() < 0.7 else ""}


def write_accounts(path: Path, n: int, seed: int, keep: int) -> list[dict[str, str]]:
    """A CSV of N accounts for `csc identity import-customers` (three in ten with an
    email); returns ``keep`` of them, to come back as queries or intakes."""
    rng = random.Random(seed)
    sample: list[dict[str, str]] = []
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["first_name", "last_name", "date_of_birth", "ssn",
                                          "email"])
        w.writeheader()
        for i in range(n):
            p = person(rng)
            w.writerow({**p, "email": f"p{i}@example.org" if rng.random() < 0.3 else ""})
            if len(sample) < keep and rng.random() < keep * 2 / n:
                sample.append(p)
    return sample


async def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    """Until ``url``/readyz answers 200; SystemExit if the process dies or it never does."""
    async with httpx.AsyncClient(base_url=url) as c:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"{what} exited during start")
            try:
                if (await c.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{what} not ready")


class LeanClient:
    """A minimal HTTP/1.1 keep-alive client for load: requests are encoded once and
    answers read by Content-Length, so the load generator costs a fraction of the
    CPU httpx does and the service, not the client, is what gets measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    @staticmethod
    def encode(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        head = [f"{method} {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(body)}",
                "Content-Type: application/json", *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self._conn is None:
            self._conn = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._conn
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await reader.readexactly(length)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None


def identity_env(identity_dsn: str, bootstrap: str, **extra: str) -> dict[str, str]:
    """The environment a bench's services and `csc` run with: fresh keys, quiet logs."""
    return {**os.environ, "CSC_ENV": "test", "CSC_KAFKA_BOOTSTRAP": bootstrap,
            "CSC_LOG_LEVEL": "WARNING", "IDENTITY_DATABASE_URL": identity_dsn,
            "IDENTITY_SSN_KEYS": f"k1:{b64_key()}", "IDENTITY_SSN_ACTIVE_KEY": "k1",
            "IDENTITY_SSN_HMAC_KEY": b64_key(), "IDENTITY_DATA_KEY": b64_key(),
            **BENCH_LIMITS, **extra}


# A bench measures capacity, not identity's rate limits: they are set out of reach.
BENCH_LIMITS = {f"IDENTITY_{name}": "100000000" for name in (
    "MATCH_RATE_PER_MINUTE", "MATCH_RATE_PER_DAY", "MATCH_CLIENT_RATE_PER_MINUTE",
    "MATCH_CLIENT_RATE_PER_DAY", "SIGNIN_RATE_PER_MINUTE", "REGISTRATION_RATE_PER_MINUTE",
    "REGISTRATION_RATE_PER_DAY", "RECOVERY_RATE_PER_MINUTE")}


@dataclass
class BenchStack:
    """A throwaway PostgreSQL and broker in ``tmp``, and the services started on them."""

    tmp: Path
    pg: LocalPostgres
    broker: LocalBroker
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, package: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.procs.append(start_service(package, port, env))
        return self.procs[-1]


@contextlib.contextmanager
def bench_stack() -> Iterator[BenchStack]:
    """PostgreSQL and the broker on free ports; everything stopped at the end."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as cleanup:
        pg = LocalPostgres(Path(tmp) / "pg", free_port())
        broker = LocalBroker(free_port())
        pg.start()
        cleanup.callback(pg.stop)
        broker.start()
        cleanup.callback(broker.stop)
        stack = BenchStack(Path(tmp), pg, broker)
        try:
            yield stack
        finally:
            for proc in stack.procs:
                proc.terminate()
                proc.wait(10)


def start_service(package: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """One uvicorn worker of ``package`` (e.g. "identity") on 127.0.0.1:``port``."""
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{package}.app:create_app", "--factory",
         "--port", str(port), "--no-access-log", "--log-level", "warning"], env=env)
