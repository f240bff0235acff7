"""Reading YAML that a person gave: one safe loader, and its errors as one line a person can act on.

Every reader of YAML input (specs, catalog data, rules files, profiles) parses through
:func:`load_checked` (or :func:`compose_checked` when it also wants the node tree's line numbers)
and reports through :func:`yaml_problem`: ``FILE:LINE: not valid YAML: PROBLEM``. PyYAML's own
message spans several lines with a picture of the spot.

PyYAML's safe loader still accepts three things that no rigkit file needs and that turn a small
file into a crash or a hang, so the node tree is checked before anything is built from it:

- aliases: one that refers to a node containing itself (``a: &a [*a]``) builds a list that holds
  itself, and a few nested aliases (the "billion laughs") expand 342 bytes into gigabytes. An
  alias inside itself is refused, and so is a file whose aliases expand it by more than
  :data:`MAX_ALIAS_NODES` nodes;
- tags other than the plain types (``!foo``, ``!!python/object/apply:...``, ``!!binary``, ``!!set``);
- mapping keys that are lists or mappings (``? [a, b]``);

and integers longer than :data:`MAX_INT_DIGITS` digits (Python refuses 4,300 and more, and no
quantity needs more than a few). Each refusal is a :class:`YamlRefused` with the line of the node.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

#: libyaml's loader when PyYAML was built with it (it is, in the wheels), else the pure-Python one
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: nodes that aliases may add to a file when expanded (a file is refused past this; no rigkit file
#: comes near: the largest catalog file has about 1,400 nodes and no aliases)
MAX_ALIAS_NODES: Final = 10_000
#: longest integer accepted (digits and sign); a count or a size needs far fewer
MAX_INT_DIGITS: Final = 30

_YAML = "tag:yaml.org,2002:"
#: the tags the safe loader gives plain text (and ``<<`` merge keys); an explicit ``!!str`` is fine
ALLOWED_TAGS: Final = frozenset(
    _YAML + t for t in ("null", "bool", "int", "float", "str", "seq", "map", "merge", "timestamp")
)


class YamlRefused(yaml.MarkedYAMLError):
    """Valid YAML that rigkit will not build: an alias inside itself or expanding too far, a tag,
    a non-scalar key, an overlong integer. ``problem_mark`` is the node's position."""

    def __init__(self, problem: str, node: yaml.Node) -> None:
        super().__init__(problem=problem, problem_mark=node.start_mark)


def check_nodes(root: yaml.Node) -> None:
    """Raise :class:`YamlRefused` for the first node of ``root`` that rigkit does not accept.

    Aliases are counted without expanding them: every node's expanded size is worked out once
    (a node reached through an alias is the same object as its anchor), so the check takes time
    in proportion to the text, not to what the aliases would expand into.
    """
    size: dict[int, int] = {}  # id(node) -> nodes it expands to, itself included
    distinct = 0
    active: set[int] = set()  # nodes whose children are being counted (a cycle comes back here)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if key in size:
            continue  # an alias of a node already counted
        if key in active:
            raise YamlRefused("an alias refers to a node that contains it (a cycle)", node)
        distinct += 1
        _check_node(node)
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size or id(c) in active)
    expanded = size[id(root)]
    if expanded - distinct > MAX_ALIAS_NODES:
        raise YamlRefused(
            f"aliases expand this document to {expanded:,} nodes from {distinct:,} "
            f"(at most {MAX_ALIAS_NODES:,} more are allowed): write the values out",
            root,
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_node(node: yaml.Node) -> None:
    if node.tag not in ALLOWED_TAGS:
        raise YamlRefused(f"tag {node.tag!r} is not allowed: write a plain value", node)
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise YamlRefused("a mapping key must be plain text, not a list or mapping", k)
    elif node.tag == _YAML + "int" and len(node.value) > MAX_INT_DIGITS:
        raise YamlRefused(
            f"an integer of {len(node.value)} characters (at most {MAX_INT_DIGITS})", node
        )


def compose_checked(text: str) -> tuple[yaml.Node | None, Any]:
    """(the checked node tree, the data built from it); (None, None) for an empty document.

    Raises ``yaml.YAMLError`` for text that is not valid YAML and :class:`YamlRefused` (also a
    ``yaml.YAMLError``) for what :func:`check_nodes` refuses.
    """
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        check_nodes(node)
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def load_checked(text: str) -> Any:
    """``yaml.safe_load(text)`` with the checks of :func:`check_nodes`."""
    return compose_checked(text)[1]


def yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line or None, ``not valid YAML: PROBLEM (CONTEXT that starts on line N)``)."""
    if isinstance(exc, YamlRefused):
        mark = exc.problem_mark
        return (mark.line + 1 if mark is not None else None), f"refused YAML: {exc.problem}"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return None, "not valid YAML: " + " ".join(str(exc).split())
    mark = exc.problem_mark or exc.context_mark
    problem = " ".join((exc.problem or exc.context or "malformed YAML").split())
    if exc.problem and exc.context and exc.context_mark is not None:
        problem += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
    return (mark.line + 1 if mark is not None else None), f"not valid YAML: {problem}"


def yaml_error_text(where: str, exc: yaml.YAMLError) -> str:
    """``WHERE:LINE: not valid YAML: PROBLEM`` (``WHERE: ...`` when the line is not known)."""
    line, text = yaml_problem(exc)
    return f"{where}:{line}: {text}" if line is not None else f"{where}: {text}"
