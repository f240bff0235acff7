"""YAML syntax errors read as one line with the file's line number."""

from __future__ import annotations

import pytest
import yaml

from rigkit.yamlerrors import yaml_error_text, yaml_problem


def _error(text: str) -> yaml.YAMLError:
    with pytest.raises(yaml.YAMLError) as info:
        yaml.safe_load(text)
    return info.value


def test_unclosed_flow_sequence_names_both_lines() -> None:
    # line 1 "a: 1", line 2 "b: [1, 2" opens a list that the end of the text (line 3) never closes
    err = _error("a: 1\nb: [1, 2\n")
    line, text = yaml_problem(err)
    assert line == 3
    assert text == (
        "not valid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence that starts on line 2)"
    )
    assert "\n" not in yaml_error_text("rules.yaml", err)
    assert yaml_error_text("rules.yaml", err).startswith("rules.yaml:3: not valid YAML: ")


def test_error_without_a_mark_keeps_the_message_on_one_line() -> None:
    err = yaml.YAMLError("first\nsecond")
    assert yaml_problem(err) == (None, "not valid YAML: first second")
    assert yaml_error_text("x.yaml", err) == "x.yaml: not valid YAML: first second"


def test_catalog_data_goes_through_the_same_checks() -> None:
    # the catalog's loader parses with the shared checked loader: a tag in a data file is
    # refused with its file and line, not built
    from rigkit.catalog.loader import parse_kind
    from rigkit.errors import CatalogError

    with pytest.raises(CatalogError, match=r"^gpus.yaml:2: refused YAML: tag '!foo'"):
        parse_kind("gpus", "- id: x\n  name: !foo y\n", "gpus.yaml")


def test_alias_bound_counts_expansion_not_text() -> None:
    from rigkit.yamlerrors import MAX_ALIAS_NODES, YamlRefused, load_checked

    # a list of 10 scalars (11 nodes) aliased n times adds 11 nodes per alias: 909 aliases add
    # 9,999 nodes (allowed), 910 add 10,010 (refused)
    assert MAX_ALIAS_NODES == 10_000
    base = "a: &a [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: ["
    assert len(load_checked(base + ", ".join(["*a"] * 909) + "]\n")["b"]) == 909
    with pytest.raises(YamlRefused, match="expand this document"):
        load_checked(base + ", ".join(["*a"] * 910) + "]\n")
