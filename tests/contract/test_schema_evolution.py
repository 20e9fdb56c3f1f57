"""Event schema evolution: the compatibility rule and the snapshot generator."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict, EmailStr

from shared.schemas import snapshot
from shared.schemas.compat import breaking_changes

# --- (c) breaking_changes ----------------------------------------------------------


def _schema(model: type[BaseModel]) -> dict[str, object]:
    return model.model_json_schema()


class _Base(BaseModel):
    model_config = ConfigDict(title="Thing")


class Old(_Base):
    a: int
    b: str
    kind: Literal["x", "y"]
    note: str | None = None


def _reasons(new: type[BaseModel], old: type[BaseModel] = Old) -> list[str]:
    return breaking_changes(_schema(old), _schema(new))


def test_removed_field_is_breaking() -> None:
    class New(_Base):
        a: int
        kind: Literal["x", "y"]
        note: str | None = None

    assert any("Thing.b" in r and "removed" in r for r in _reasons(New))


def test_renamed_field_is_breaking() -> None:
    class New(_Base):
        a: int
        b_renamed: str | None = None
        kind: Literal["x", "y"]
        note: str | None = None

    assert any("Thing.b:" in r and "removed" in r for r in _reasons(New))


def test_newly_required_field_is_breaking() -> None:
    class New(_Base):
        a: int
        b: str
        kind: Literal["x", "y"]
        note: str
        extra: int

    reasons = _reasons(New)
    assert any("Thing.note" in r and "now required" in r for r in reasons)
    assert any("Thing.extra" in r and "required" in r for r in reasons)


def test_type_change_is_breaking() -> None:
    class New(_Base):
        a: str
        b: EmailStr
        kind: Literal["x", "y"]
        note: int | None = None

    reasons = _reasons(New)
    assert any(r.startswith("Thing.a: type changed") for r in reasons)
    assert any(r.startswith("Thing.b: type changed") for r in reasons)  # format
    assert any(r.startswith("Thing.note: type changed") for r in reasons)


def test_enum_value_removed_is_breaking() -> None:
    class New(_Base):
        a: int
        b: str
        kind: Literal["x"]
        note: str | None = None

    assert _reasons(New) == ["Thing.kind: enum value 'y' removed"]


def test_optional_field_and_enum_value_added_are_compatible() -> None:
    class New(_Base):
        a: int
        b: str | None
        kind: Literal["x", "y", "z"]
        note: str | None = None
        added: list[int] | None = None

    assert _reasons(New) == []


def test_nullable_made_non_null_is_breaking() -> None:
    class New(_Base):
        a: int
        b: str
        kind: Literal["x", "y"]
        note: str = ""

    assert any(r.startswith("Thing.note: type changed") for r in _reasons(New))


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Color2(Enum):
    RED = "red"


class Inner(BaseModel):
    value: str
    color: Color


class InnerV2(BaseModel):
    model_config = ConfigDict(title="Inner")
    color: Color2


class InnerV3(BaseModel):
    model_config = ConfigDict(title="Inner")
    value: str
    color: Color
    more: int | None = None


def test_nested_defs_are_compared() -> None:
    class Outer(_Base):
        items: list[Inner]
        one: Inner | None = None

    class OuterBroken(_Base):
        items: list[InnerV2]
        one: InnerV2 | None = None

    class OuterGrown(_Base):
        items: list[InnerV3]
        one: InnerV3 | None = None

    reasons = breaking_changes(_schema(Outer), _schema(OuterBroken))
    assert "Thing.items[].value: property removed (a rename is a removal)" in reasons
    assert "Thing.items[].color: enum value 'blue' removed" in reasons
    assert breaking_changes(_schema(Outer), _schema(OuterGrown)) == []


# --- snapshot generator ------------------------------------------------------------


class ThingV1(BaseModel):
    model_config = ConfigDict(title="Thing")
    VERSION: ClassVar[int] = 1
    a: int
    b: str


class ThingGrown(ThingV1):
    model_config = ConfigDict(title="Thing")
    c: str | None = None


class ThingBroken(BaseModel):
    model_config = ConfigDict(title="Thing")
    VERSION: ClassVar[int] = 1
    a: int


class ThingV2(ThingBroken):
    model_config = ConfigDict(title="Thing")
    VERSION: ClassVar[int] = 2


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "Thing").iterdir())


def test_generator_writes_new_revisions_only(tmp_path: Path) -> None:
    assert (
        snapshot.main(["--check"], snapshot_dir=tmp_path, registry={"Thing": ThingV1})
        == 1
    )
    written = snapshot.write_snapshots(tmp_path, {"Thing": ThingV1})
    assert [p.name for p in written] == ["v1.0.json"]
    first = (tmp_path / "Thing" / "v1.0.json").read_text()
    assert first == snapshot.render(ThingV1.model_json_schema())
    assert snapshot.write_snapshots(tmp_path, {"Thing": ThingV1}) == []
    assert (
        snapshot.main(["--check"], snapshot_dir=tmp_path, registry={"Thing": ThingV1})
        == 0
    )

    assert snapshot.main([], snapshot_dir=tmp_path, registry={"Thing": ThingGrown}) == 0
    assert _files(tmp_path) == ["v1.0.json", "v1.1.json"]
    assert (tmp_path / "Thing" / "v1.0.json").read_text() == first


def test_generator_refuses_incompatible_revision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot.write_snapshots(tmp_path, {"Thing": ThingV1})
    with pytest.raises(snapshot.IncompatibleSchemaError) as caught:
        snapshot.write_snapshots(tmp_path, {"Thing": ThingBroken})
    assert any("Thing" in p and ".b" in p for p in caught.value.problems)

    assert (
        snapshot.main([], snapshot_dir=tmp_path, registry={"Thing": ThingBroken}) == 1
    )
    err = capsys.readouterr().err
    assert "Thing v1.1" in err and "Thing.b: property removed" in err
    assert _files(tmp_path) == ["v1.0.json"]

    # a breaking change is fine as a new major
    assert snapshot.main([], snapshot_dir=tmp_path, registry={"Thing": ThingV2}) == 0
    assert _files(tmp_path) == ["v1.0.json", "v2.0.json"]


def test_generator_orders_revisions_numerically(tmp_path: Path) -> None:
    folder = tmp_path / "Thing"
    folder.mkdir()
    for revision in (0, 9, 10):
        (folder / f"v1.{revision}.json").write_text(snapshot.render({}))
    last = snapshot.latest(tmp_path, "Thing", 1)
    assert last is not None and last.revision == 10
