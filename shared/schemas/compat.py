"""Is a new JSON Schema revision compatible with the previous one of the same major?

Breaking: a property removed (a rename is a removal), a property newly required,
a property's type changed (type, format, enum/const, anyOf alternatives, the
structure behind a ``$ref``), an enum value removed. Compatible: an optional
property added, an enum value added, a type widened (``X`` -> ``X | None``).
The rules apply recursively through arrays, maps and nested ``$defs`` models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]
_Kind = tuple[str, ...]


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Readable reasons why ``new_schema`` breaks readers of ``old_schema`` (empty if none)."""
    root = str(new_schema.get("title") or old_schema.get("title") or "schema")
    comparer = _Comparer(old_schema.get("$defs", {}), new_schema.get("$defs", {}))
    comparer.compare(old_schema, new_schema, root)
    return comparer.reasons


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _kind(schema: Schema) -> _Kind:
    if "enum" in schema or "const" in schema:
        return ("enum", str(schema.get("type", "")))
    if "type" in schema:
        return ("type", str(schema["type"]), str(schema.get("format", "")))
    return ("any",)


def _describe(kind: _Kind) -> str:
    if kind[0] == "type":
        return kind[1] + (f" ({kind[2]})" if kind[2] else "")
    if kind[0] == "enum":
        return "enum" + (f" of {kind[1]}" if kind[1] else "")
    return "any"


def _enum_values(schema: Schema) -> list[Any]:
    if "enum" in schema:
        return list(schema["enum"])
    return [schema["const"]]


class _Comparer:
    def __init__(
        self, old_defs: Mapping[str, Schema], new_defs: Mapping[str, Schema]
    ) -> None:
        self.old_defs = old_defs
        self.new_defs = new_defs
        self.reasons: list[str] = []
        self._visited: set[tuple[str, str]] = set()

    def _alternatives(
        self, schema: Schema, defs: Mapping[str, Schema]
    ) -> list[tuple[Schema, str | None]]:
        """The schema's alternatives, each with ``$ref`` resolved (and the ref's name)."""
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return [
                    alt
                    for member in schema[key]
                    for alt in self._alternatives(member, defs)
                ]
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self._alternatives(schema["allOf"][0], defs)
        if "$ref" in schema:
            name = _ref_name(str(schema["$ref"]))
            return [(defs.get(name, {}), name)]
        if isinstance(schema.get("type"), list):
            rest = {k: v for k, v in schema.items() if k != "type"}
            return [({**rest, "type": t}, None) for t in schema["type"]]
        return [(schema, None)]

    def compare(self, old: Schema, new: Schema, path: str) -> None:
        old_alts = self._alternatives(old, self.old_defs)
        new_alts = self._alternatives(new, self.new_defs)
        new_kinds = {_kind(schema) for schema, _ in new_alts}
        unmatched: list[_Kind] = []
        for old_alt, old_ref in old_alts:
            kind = _kind(old_alt)
            same_kind = [(s, ref) for s, ref in new_alts if _kind(s) == kind]
            if same_kind:
                # prefer the alternative behind the same $ref name, if there is one
                new_alt, new_ref = next(
                    ((s, ref) for s, ref in same_kind if ref == old_ref), same_kind[0]
                )
                if old_ref is not None and new_ref is not None:
                    if (old_ref, new_ref) in self._visited:
                        continue
                    self._visited.add((old_ref, new_ref))
                self._compare_same_kind(old_alt, new_alt, path)
            elif ("any",) in new_kinds:
                continue
            elif kind[0] == "enum" and ("type", kind[1], "") in new_kinds:
                continue  # an enum widened to its plain type
            else:
                unmatched.append(kind)
        if unmatched:
            before = " | ".join(_describe(_kind(s)) for s, _ in old_alts)
            after = " | ".join(_describe(_kind(s)) for s, _ in new_alts)
            self.reasons.append(f"{path}: type changed from {before} to {after}")

    def _compare_same_kind(self, old: Schema, new: Schema, path: str) -> None:
        if "enum" in old or "const" in old:
            new_values = [json.dumps(v, sort_keys=True) for v in _enum_values(new)]
            for value in _enum_values(old):
                if json.dumps(value, sort_keys=True) not in new_values:
                    self.reasons.append(f"{path}: enum value {value!r} removed")
            return
        if "properties" in old or "properties" in new:
            self._compare_object(old, new, path)
        old_extra, new_extra = (
            old.get("additionalProperties"),
            new.get("additionalProperties"),
        )
        if isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
            self.compare(old_extra, new_extra, f"{path}{{}}")
        if isinstance(old.get("items"), Mapping) and isinstance(
            new.get("items"), Mapping
        ):
            self.compare(old["items"], new["items"], f"{path}[]")

    def _compare_object(self, old: Schema, new: Schema, path: str) -> None:
        old_props: Mapping[str, Schema] = old.get("properties", {})
        new_props: Mapping[str, Schema] = new.get("properties", {})
        old_required = set(old.get("required", []))
        for name, old_prop in old_props.items():
            if name not in new_props:
                self.reasons.append(
                    f"{path}.{name}: property removed (a rename is a removal)"
                )
            else:
                self.compare(old_prop, new_props[name], f"{path}.{name}")
        for name in sorted(set(new.get("required", [])) - old_required):
            if name in old_props:
                self.reasons.append(
                    f"{path}.{name}: property was optional, now required"
                )
            else:
                self.reasons.append(f"{path}.{name}: new property is required")
