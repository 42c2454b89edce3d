"""Resource bodies in Bicep files checked against Azure's published resource type definitions
(`../shared/azure-types`, the ones the Bicep compiler uses), since the compiler cannot run here.

What it finds, as the compiler would: property names the type does not have, string literals
outside a closed set of values, read-only properties assigned, required properties missing. Values
that are expressions (parameters, function calls, interpolations) are not judged.

Types of a Bicep extension (Microsoft Graph) are checked the same way, and a resource of one is a
problem unless its file declares that extension (`extension <alias>`, the alias resolved through the
nearest bicepconfig.json, as Bicep resolves it, or `extension 'br:…'`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED, READ_ONLY = 1, 2
# Keywords a resource body may hold besides the type's own properties.
RESOURCE_KEYWORDS = {"scope", "dependsOn", "parent"}

# `extension <alias or 'reference'> [with {…}] [as <name>]` (Bicep's extension statement). The
# tree-sitter grammar (tree-sitter-bicep 1.1.0, the latest release) predates it, but parses the same
# statement under its former keyword, `import '<reference>' [with {…}] [as <name>]`: `parse` rewrites
# each extension statement into that form, on the same line, so that line numbers hold and anything
# malformed after the reference is still a parse error.
EXTENSION = re.compile(rb"^extension[ \t]+(?:(?P<alias>[A-Za-z_][A-Za-z0-9_]*)|'(?P<ref>[^'\\\n]*)')(?P<rest>[^\n]*)$",
                       re.MULTILINE)


@dataclass(frozen=True)
class TypeIndex:
    """Every ResourceType of the given type files, by `Type@version` (lower case), and for the types of
    an extension the extension's registry reference (`br:…`) a file must declare to use them."""

    resources: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]
    extension_of: dict[str, str]

    @classmethod
    def load(cls, files: list[Path], extensions: dict[str, Path] | None = None) -> TypeIndex:
        """`files`: Azure's type files; `extensions`: registry reference -> the extension's types.json."""
        resources: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
        extension_of: dict[str, str] = {}
        for path, reference in [(p, None) for p in files] + [(p, r) for r, p in (extensions or {}).items()]:
            types = json.loads(path.read_text())
            for entry in types:
                if entry["$type"] == "ResourceType":
                    resources[entry["name"].lower()] = (types, entry)
                    if reference:
                        extension_of[entry["name"].lower()] = reference
        return cls(resources, extension_of)


@dataclass(frozen=True)
class Parsed:
    """A Bicep file as the grammar parses it: its (rewritten) source, tree and declared extensions."""

    source: bytes
    tree: Any
    extensions: list[str]  # each as written: an alias, or 'br:…'


def parse(source: bytes) -> Parsed:
    import tree_sitter_bicep
    from tree_sitter import Language, Parser

    declared: list[str] = []

    def rewrite(match: re.Match[bytes]) -> bytes:
        name = match["alias"] if match["alias"] is not None else match["ref"]
        declared.append(name.decode())
        return b"import '" + name + b"'" + match["rest"]

    rewritten = EXTENSION.sub(rewrite, source)
    return Parsed(rewritten, Parser(Language(tree_sitter_bicep.language())).parse(rewritten), declared)


def bicep_config(path: Path) -> tuple[Path | None, dict[str, Any]]:
    """The bicepconfig.json Bicep uses for a file: the nearest one in its folder or a parent folder."""
    for folder in [path.parent, *path.parent.parents]:
        candidate = folder / "bicepconfig.json"
        if candidate.is_file():
            return candidate, json.loads(candidate.read_text())
    return None, {}


def resolve_extensions(declared: list[str], config: dict[str, Any]) -> dict[str, str | None]:
    """Each declared extension -> its registry reference (None: an alias the configuration lacks)."""
    aliases = config.get("extensions", {})
    return {name: name if ":" in name else aliases.get(name) for name in declared}


def _deref(types: list[dict[str, Any]], ref: dict[str, str]) -> dict[str, Any]:
    return types[int(ref["$ref"].removeprefix("#/"))]


class Checker:
    """Walks the resource declarations of one Bicep file; `problems` lists what is wrong."""

    def __init__(self, index: TypeIndex, source: bytes, name: str, extensions: set[str] | None = None) -> None:
        self.index, self.source, self.name = index, source, name
        self.extensions = extensions or set()  # registry references the file declares
        self.problems: list[str] = []
        self.checked: list[str] = []
        self._enclosing_type = ""

    def run(self, root: Any) -> list[str]:
        for node in root.children:
            if node.type == "resource_declaration":
                self._resource(node, parent_type=None)
        return self.problems

    # --- the tree ---------------------------------------------------------------------------------

    def _text(self, node: Any) -> str:
        return self.source[node.start_byte:node.end_byte].decode()

    def _literal(self, node: Any) -> str | None:
        """The value of a string without interpolation, else None."""
        if node.type != "string" or any(child.type == "interpolation" for child in node.children):
            return None
        return "".join(self._text(child) for child in node.children if child.type == "string_content")

    def _where(self, node: Any) -> str:
        return f"{self.name}:{node.start_point[0] + 1}"

    def _resource(self, node: Any, parent_type: str | None) -> None:
        declared = self._literal(next(child for child in node.children if child.type == "string")) or ""
        if parent_type:  # a nested resource names only its own segment, and its parent's version unless its own
            base, _, version = parent_type.partition("@")
            segment, _, own_version = declared.partition("@")
            full = f"{base}/{segment}@{own_version or version}"
        else:
            full = declared
        if "existing" in [self._text(child) for child in node.children]:
            return  # a reference to a resource deployed elsewhere: no body to check
        found = self.index.resources.get(full.lower())
        if found is None:
            self.problems.append(f"{self._where(node)}: no type definition for {full}")
            return
        types, resource = found
        extension = self.index.extension_of.get(full.lower())
        if extension and extension not in self.extensions:
            self.problems.append(f"{self._where(node)}: {full} is a type of the extension {extension}, which "
                                 f"this file does not declare (declared: {sorted(self.extensions) or 'none'})")
        self.checked.append(full)
        body = self._body(node)
        if body is None:
            return
        outer, self._enclosing_type = self._enclosing_type, full  # for the resources nested in the body
        try:
            self._object(body, types, _deref(types, resource["body"]), full, top=True)
        finally:
            self._enclosing_type = outer

    def _body(self, node: Any) -> Any:
        """The object of `= {…}`, `= if (…) {…}` or `= [for … : {…}]`."""
        for child in node.children:
            if child.type == "object":
                return child
            if child.type in ("if_statement", "for_statement"):
                inner = [c for c in child.children if c.type == "object"]
                if inner:
                    return inner[-1]
                ifs = [c for c in child.children if c.type == "if_statement"]
                if ifs:
                    return self._body(ifs[0])
        return None

    # --- the types --------------------------------------------------------------------------------

    def _object(self, node: Any, types: list[dict[str, Any]], kind: dict[str, Any], path: str, *,
                top: bool = False) -> None:
        properties = self._properties(node)
        if kind["$type"] == "DiscriminatedObjectType":
            chosen = properties.get(kind["discriminator"])
            value = self._literal(chosen[1]) if chosen else None
            elements = {key.lower(): ref for key, ref in kind["elements"].items()}
            if value is None or value.lower() not in elements:
                if value is not None:
                    self.problems.append(f"{self._where(node)}: {path}: {kind['discriminator']} {value!r} is "
                                         f"not one of {sorted(kind['elements'])}")
                return
            element = _deref(types, elements[value.lower()])
            kind = {"$type": "ObjectType", "properties": {**kind.get("baseProperties", {}),
                                                          **element.get("properties", {})},
                    "additionalProperties": element.get("additionalProperties")}
        if kind["$type"] != "ObjectType":
            return
        known = {name.lower(): (name, spec) for name, spec in kind.get("properties", {}).items()}
        for key, (key_node, value) in properties.items():
            if top and key in RESOURCE_KEYWORDS:
                continue
            spec = known.get(key.lower())
            if spec is None:
                if not kind.get("additionalProperties"):
                    self.problems.append(f"{self._where(key_node)}: {path}: unknown property {key!r}")
                else:
                    self._value(value, types, kind["additionalProperties"], f"{path}.{key}")
                continue
            name, spec = spec
            if spec.get("flags", 0) & READ_ONLY and not spec.get("flags", 0) & REQUIRED:
                self.problems.append(f"{self._where(key_node)}: {path}: {name!r} is read-only")
                continue
            self._value(value, types, spec["type"], f"{path}.{name}")
        present = {key.lower() for key in properties}
        for name, spec in kind.get("properties", {}).items():
            flags = spec.get("flags", 0)
            if flags & REQUIRED and not flags & READ_ONLY and name.lower() not in present:
                self.problems.append(f"{self._where(node)}: {path}: required property {name!r} is missing")

    def _properties(self, node: Any) -> dict[str, tuple[Any, Any]]:
        """key -> (key node, value node) of an object literal; nested resources are not properties."""
        out = {}
        for prop in node.children:
            if prop.type != "object_property":
                continue
            nested = [c for c in prop.children if c.type == "resource_declaration"]
            if nested:
                continue
            key, value = prop.children[0], prop.children[-1]
            name = self._literal(key) if key.type == "string" else self._text(key)
            out[name or self._text(key)] = (key, value)
        for prop in node.children:  # nested resources, checked with their parent's type
            for nested in (c for c in prop.children if c.type == "resource_declaration"):
                self._resource(nested, parent_type=self._enclosing_type)
        return out

    def _value(self, node: Any, types: list[dict[str, Any]], ref: dict[str, str], path: str) -> None:
        kind = _deref(types, ref)
        if kind["$type"] in ("ObjectType", "DiscriminatedObjectType") and node.type == "object":
            self._object(node, types, kind, path)
        elif kind["$type"] == "ArrayType" and node.type == "array":
            for item in node.children:
                if item.type in ("object", "string"):
                    self._value(item, types, kind["itemType"], f"{path}[]")
        elif node.type == "string":
            literal = self._literal(node)
            allowed = self._closed_set(types, kind)
            if literal is not None and allowed is not None and literal not in allowed:
                self.problems.append(f"{self._where(node)}: {path}: {literal!r} is not one of {sorted(allowed)}")

    def _closed_set(self, types: list[dict[str, Any]], kind: dict[str, Any]) -> set[str] | None:
        """The values a string may take, when the type is a closed set of literals; else None."""
        if kind["$type"] == "StringLiteralType":
            return {kind["value"]}
        if kind["$type"] != "UnionType":
            return None
        values = set()
        for element in (_deref(types, ref) for ref in kind["elements"]):
            if element["$type"] != "StringLiteralType":
                return None
            values.add(element["value"])
        return values


def check(index: TypeIndex, path: Path) -> tuple[list[str], list[str]]:
    """(problems, resource types checked) of one Bicep file."""
    parsed = parse(path.read_bytes())
    config_path, config = bicep_config(path)
    resolved = resolve_extensions(parsed.extensions, config)
    problems = [f"{path.name}: extension {name!r} is not an alias in {config_path or 'any bicepconfig.json'}"
                for name, reference in resolved.items() if reference is None]
    checker = Checker(index, parsed.source, path.name, {ref for ref in resolved.values() if ref})
    return problems + checker.run(parsed.tree.root_node), checker.checked
