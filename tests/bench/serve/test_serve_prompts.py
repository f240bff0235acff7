"""Random prompts of a target length and dataset files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigkit.bench.prompts import RandomPrompts, load_dataset
from rigkit.errors import BenchError


def test_random_prompt_length_and_calibration() -> None:
    rp = RandomPrompts(200, seed=1)
    # 200 tokens at 0.75 words/token = 150 words
    assert len(rp.make().text.split()) == 150
    # the server counted 150 words as 250 tokens: 0.6 words/token -> 200 * 0.6 = 120 words
    rp.calibrate(150, 250)
    assert rp.words_per_token == pytest.approx(0.6)
    assert len(rp.make().text.split()) == 120
    rp.calibrate(0, 10)  # nothing to learn from: unchanged
    assert rp.words_per_token == pytest.approx(0.6)


def test_random_prompts_differ_from_the_first_word() -> None:
    rp = RandomPrompts(8, seed=0)
    a, b = rp.make().text, rp.make().text
    assert a.split()[0] != b.split()[0]  # numbered heads "1", "2": no shared prefix to cache


def test_random_prompts_reject_zero_length() -> None:
    with pytest.raises(BenchError):
        RandomPrompts(0)


def test_dataset_formats(tmp_path: Path) -> None:
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(
        '"plain text"\n'
        '{"prompt": "with prompt", "max_tokens": 7}\n'
        "\n"
        '{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}\n'
        '{"conversations": [{"from": "human", "value": "share gpt"}, {"from": "gpt", "value": "x"}]}\n'
    )
    ps = load_dataset(jsonl)
    assert [p.text for p in ps] == ["plain text", "with prompt", "be brief\nhi", "share gpt"]
    assert ps[1].max_tokens == 7
    assert ps[2].chat_messages()[0] == {"role": "system", "content": "be brief"}
    assert ps[0].chat_messages() == [{"role": "user", "content": "plain text"}]
    js = tmp_path / "d.json"
    js.write_text(json.dumps([{"prompt": "a"}, "b"]))
    assert [p.text for p in load_dataset(js)] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no prompts"),
        ("{bad\n", "not valid JSON"),
        ('{"nothing": 1}\n', "no prompt found"),
        ('{"prompt": "a", "max_tokens": 0}\n', "max_tokens"),
        ("[1]", "string or an object"),
    ],
)
def test_dataset_errors(tmp_path: Path, text: str, fragment: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(text)
    with pytest.raises(BenchError, match=fragment):
        load_dataset(f)


def test_dataset_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="cannot read dataset"):
        load_dataset(tmp_path / "none.jsonl")
