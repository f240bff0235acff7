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
