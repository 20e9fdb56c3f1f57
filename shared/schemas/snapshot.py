"""JSON Schema snapshots of every event: ``snapshots/<Type>/v<major>.<revision>.json``.

``python -m shared.schemas.snapshot`` writes a new revision for each event whose
schema differs from the latest revision of its major, and refuses (exit 1) if any
new revision would break the previous one. Existing files are never edited.
``--check`` only reports events whose schema differs from their latest snapshot.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shared.schemas.compat import breaking_changes

SNAPSHOT_DIR = Path(__file__).resolve().parent / "snapshots"
_FILE_NAME = re.compile(r"^v(\d+)\.(\d+)\.json$")

Registry = Mapping[str, type[BaseModel]]


class IncompatibleSchemaError(Exception):
    """At least one new revision would break readers of the previous revision."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Revision:
    """One snapshot file."""

    type_name: str
    major: int
    revision: int
    path: Path

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return data


@dataclass(frozen=True)
class PlannedWrite:
    """A snapshot file to be created."""

    type_name: str
    path: Path
    schema: dict[str, Any]


def render(schema: Mapping[str, Any]) -> str:
    """Pretty-printed JSON with sorted keys, as stored."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def current_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema, normalised through JSON (lists, str keys)."""
    data: dict[str, Any] = json.loads(render(model.model_json_schema()))
    return data


def major_of(model: type[BaseModel]) -> int:
    """The model's schema major version (``VERSION``, default 1)."""
    return int(getattr(model, "VERSION", 1))


def revisions(
    snapshot_dir: Path, type_name: str, major: int | None = None
) -> list[Revision]:
    """Snapshot files of a type (of one major, if given), oldest first."""
    folder = snapshot_dir / type_name
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _FILE_NAME.match(path.name)
        if match and (major is None or int(match[1]) == major):
            found.append(Revision(type_name, int(match[1]), int(match[2]), path))
    return sorted(found, key=lambda r: (r.major, r.revision))


def latest(snapshot_dir: Path, type_name: str, major: int) -> Revision | None:
    """The latest revision of a type's major, if any."""
    found = revisions(snapshot_dir, type_name, major)
    return found[-1] if found else None


def plan(
    snapshot_dir: Path, registry: Registry
) -> tuple[list[PlannedWrite], list[str]]:
    """Files to create, and the reasons any of them would be incompatible."""
    writes: list[PlannedWrite] = []
    problems: list[str] = []
    for type_name, model in sorted(registry.items()):
        schema = current_schema(model)
        major = major_of(model)
        last = latest(snapshot_dir, type_name, major)
        if last is None:
            path = snapshot_dir / type_name / f"v{major}.0.json"
            writes.append(PlannedWrite(type_name, path, schema))
            continue
        previous = last.load()
        if previous == schema:
            continue
        name = f"v{major}.{last.revision + 1}"
        reasons = breaking_changes(previous, schema)
        if reasons:
            problems.extend(
                f"{type_name} {name} would break v{major}.{last.revision}: {reason}"
                for reason in reasons
            )
            continue
        writes.append(
            PlannedWrite(type_name, snapshot_dir / type_name / f"{name}.json", schema)
        )
    return writes, problems


def write_snapshots(snapshot_dir: Path, registry: Registry) -> list[Path]:
    """Create every planned file, or none if any is incompatible (``IncompatibleSchemaError``)."""
    writes, problems = plan(snapshot_dir, registry)
    if problems:
        raise IncompatibleSchemaError(problems)
    for write in writes:
        write.path.parent.mkdir(parents=True, exist_ok=True)
        with write.path.open("x", encoding="utf-8") as handle:  # never overwrite
            handle.write(render(write.schema))
    return [write.path for write in writes]


def stale(snapshot_dir: Path, registry: Registry) -> list[str]:
    """Events whose current schema differs from (or lacks) their latest snapshot."""
    found = []
    for type_name, model in sorted(registry.items()):
        major = major_of(model)
        last = latest(snapshot_dir, type_name, major)
        if last is None:
            found.append(f"{type_name}: no v{major} snapshot")
        elif last.load() != current_schema(model):
            found.append(f"{type_name}: schema differs from {last.path.name}")
    return found


def main(
    argv: Sequence[str] | None = None,
    *,
    snapshot_dir: Path | None = None,
    registry: Registry | None = None,
) -> int:
    """Command line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m shared.schemas.snapshot",
        description="Write event JSON Schema snapshots.",
    )
    parser.add_argument(
        "--check", action="store_true", help="only report stale snapshots"
    )
    parser.add_argument("--dir", type=Path, default=None, help="snapshot directory")
    args = parser.parse_args(argv)
    folder = args.dir or snapshot_dir or SNAPSHOT_DIR
    if registry is None:
        from shared.schemas.registry import REGISTRY

        registry = REGISTRY
    if args.check:
        differing = stale(folder, registry)
        for line in differing:
            print(line, file=sys.stderr)
        if differing:
            print("run: python -m shared.schemas.snapshot", file=sys.stderr)
            return 1
        print(f"{len(registry)} event schemas match their snapshots")
        return 0
    try:
        written = write_snapshots(folder, registry)
    except IncompatibleSchemaError as error:
        print("refusing to write incompatible snapshots:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        print(
            "a breaking change needs a new major (VERSION and topic .vN)",
            file=sys.stderr,
        )
        return 1
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("snapshots up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
