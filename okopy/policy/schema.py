"""Validating YAML configuration by walking its node tree.

Every problem is reported as `file:line:column: what is wrong`, and all of
them at once; unknown keys are errors.  Used by the policy and lab
topology files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


class _Loader(yaml.SafeLoader):
    """YAML 1.1 without its base-60 numbers, so that a plain
    `12:34:56:12:34:56` is a MAC address and `1:0:0:0:0:0:0:1` an IPv6
    address, not the numbers 9783981296 and 2799360000001."""


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, re.compile("^(?!.*:)" + rx.pattern.removeprefix("^"), rx.flags))
        if tag in _NUMBER_TAGS
        else (tag, rx)
        for tag, rx in resolvers
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_node(node: Node) -> Any:
    return yaml.load(yaml.serialize(node), Loader=_Loader)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class ConfigError(ValueError):
    """A configuration file is invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def as_int(v: Any) -> int:
    """An integer from YAML: a number, or a string such as "0x1f"."""
    if isinstance(v, bool):
        raise ValueError("must be a number")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            pass
    raise ValueError(f"{v!r} is not a number")


class Validator:
    """Reads one file's nodes, collecting problems.  'params' are the
    template parameters a value `$name` stands for (`$$` is a literal `$`);
    validators of several files may share one 'problems' list."""

    def __init__(
        self,
        file: str,
        problems: list[Problem] | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.file = file
        self.problems: list[Problem] = problems if problems is not None else []
        self.params = params

    def with_params(self, params: dict[str, Any]) -> Validator:
        """This validator, where `$name` values read as 'params'."""
        return Validator(self.file, self.problems, params)

    def _substitute(self, node: Node, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._substitute(node, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(node, v) for v in value]
        if not isinstance(value, str) or not value.startswith("$") or self.params is None:
            return value
        if value.startswith("$$"):
            return value[1:]
        name = value[1:]
        if name not in self.params:
            known = ", ".join(f"${p}" for p in self.params) or "none"
            self.error(node, f"unknown parameter {value} (parameters: {known})")
            return None
        return self.params[name]

    def compose(self, text: str, what: str, error: type[ConfigError]) -> Node:
        """Parse 'text' into a node tree, or raise 'error'."""
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise error([Problem(self.file, line, col, f"not valid YAML: {e}")]) from None
        if root is None:
            raise error([Problem(self.file, 1, 1, f"{what} is empty")])
        return root

    def error(self, node: Node, message: str) -> None:
        m = node.start_mark
        self.problems.append(Problem(self.file, m.line + 1, m.column + 1, message))

    def mapping(
        self,
        node: Node,
        what: str,
        required: tuple[str, ...],
        optional: tuple[str, ...],
    ) -> dict[str, Node] | None:
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping")
            return None
        out: dict[str, Node] = {}
        allowed = (*required, *optional)
        for k, v in node.value:
            key = k.value if isinstance(k, ScalarNode) else None
            if key is None or key not in allowed:
                self.error(k, f"unknown key {key!r} in {what} (allowed: {', '.join(allowed)})")
            elif key in out:
                self.error(k, f"duplicate key {key!r} in {what}")
            else:
                out[key] = v
        for r in required:
            if r not in out:
                self.error(node, f"{what} needs {r!r}")
        return out

    def scalar(self, node: Node, what: str) -> Any:
        if not isinstance(node, ScalarNode):
            self.error(node, f"{what} must be a single value")
            return None
        return self._substitute(node, _load_node(node))

    def plain(self, node: Node) -> Any:
        """Any YAML value (for map keys and values, typed later by BTF)."""
        return self._substitute(node, _load_node(node))

    def integer(self, node: Node, what: str, lo: int, hi: int) -> int | None:
        v = self.scalar(node, what)
        if v is None:
            return None
        try:
            n = as_int(v)
        except ValueError as e:
            self.error(node, f"{what}: {e}")
            return None
        if not lo <= n <= hi:
            self.error(node, f"{what} must be between {lo} and {hi:#x}")
            return None
        return n

    def name_list(self, node: Node, what: str) -> list[tuple[str, Node]]:
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} must be a list")
            return []
        out = []
        for item in node.value:
            v = self.scalar(item, what)
            if isinstance(v, str):
                out.append((v, item))
            elif v is not None:
                self.error(item, f"{what}: {v!r} is not a name")
        return out
