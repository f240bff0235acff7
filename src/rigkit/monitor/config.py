"""The monitor's configuration file (``--rules FILE``): ``rules:``, ``response:`` and ``notify:``.

One pydantic model per section validates the file; every problem is one line naming the file,
the line, the setting and what is wrong (``rules.yaml:7: rules.gpu_temp_high.for: expected a
duration like 30s or 5m, got 'soon'``), raised as :class:`~rigkit.errors.MonitorError` (the CLI
prints it and exits 2). The packaged default alert rules (``monitor/data/default-rules.yaml``) are
read through the same models.

Files are read by rigkit's safe reader (a regular file of at most :data:`MAX_FILE_BYTES`, UTF-8)
and its checked YAML loader (no tags, no list or mapping keys, no alias inside itself or alias
bomb); duplicate keys and nesting deeper than :data:`MAX_DEPTH` levels are refused here too,
each with the line it is on.

The models hold settings as written (durations already in seconds); turning them into alert
rules and a response policy, on top of the defaults, is :mod:`rigkit.monitor.alerts` and
:mod:`rigkit.monitor.respond`'s job.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from rigkit.errors import MonitorError
from rigkit.inputs import UnreadableInput, read_text_file
from rigkit.yamlerrors import compose_checked, yaml_problem

#: A settings file is a few kB; anything bigger than this is not one.
MAX_FILE_BYTES = 1024 * 1024

Loc = tuple[str | int, ...]

# --- YAML -> (data, line of each setting) -------------------------------------------------------


class _Lines:
    """The line of every mapping key and list item of a (checked) node tree, refusing
    duplicate keys, which the YAML loader would let the last one win silently."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Loc, int] = {}

    def walk(self, root: yaml.Node) -> None:
        stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
        while stack:  # no recursion: nesting depth is bounded before, but stay iterative
            node, loc = stack.pop()
            self.lines.setdefault(loc, node.start_mark.line + 1)
            if isinstance(node, yaml.SequenceNode):
                stack.extend(((item, (*loc, i)) for i, item in enumerate(node.value)))
            elif isinstance(node, yaml.MappingNode):
                seen: dict[str, int] = {}
                for key_node, value_node in node.value:
                    key = str(key_node.value)
                    line = key_node.start_mark.line + 1
                    if key in seen:
                        raise MonitorError(
                            f"{self.file}:{line}: {_fmt_loc((*loc, key))}: duplicate key",
                            hint=f"first given on line {seen[key]}",
                        )
                    seen[key] = line
                    self.lines[(*loc, key)] = line
                    stack.append((value_node, (*loc, key)))


#: Deepest nesting of lists and mappings a settings file may use (the real ones use 4).
MAX_DEPTH = 50

_OPEN = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
         yaml.FlowSequenceStartToken)  # fmt: skip
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _check_depth(text: str, file: str) -> None:
    """Refuse deep nesting before the (recursive) loader sees it, with the line it starts on."""
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    line = token.start_mark.line + 1
                    raise MonitorError(
                        f"{file}:{line}: nested more than {MAX_DEPTH} levels deep",
                        hint="a settings file needs a few levels",
                    )
            elif isinstance(token, _CLOSE):
                depth -= 1
    except yaml.YAMLError:
        return  # the loader reports syntax errors with their line


def read_yaml_text(text: str, file: str) -> tuple[Any, dict[Loc, int]]:
    """(data, line of each key) of a settings document, through rigkit's checked YAML loader
    (no tags, no non-scalar keys, bounded aliases: :func:`rigkit.yamlerrors.compose_checked`);
    MonitorError for anything refused."""
    _check_depth(text, file)
    try:
        root, data = compose_checked(text)
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        where = f"{file}:{line}" if line is not None else file
        raise MonitorError(f"{where}: {problem}") from None
    if root is None:
        return None, {}
    lines = _Lines(file)
    lines.walk(root)
    return data, lines.lines


def read_settings_file(path: str | Path) -> tuple[Any, dict[Loc, int]]:
    """Read a settings file: a regular file of at most :data:`MAX_FILE_BYTES`, UTF-8 YAML
    (:func:`rigkit.inputs.read_text_file`)."""
    try:
        text = read_text_file(path, limit=MAX_FILE_BYTES)
    except UnreadableInput as err:
        raise MonitorError(str(err.message), hint=err.hint) from None
    return read_yaml_text(text, str(path))


# --- value types ------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
#: Longest duration a setting takes (a year): anything longer is a typo, and huge values overflow.
MAX_DURATION_S = 366 * 86400.0


def duration_s(value: object) -> float:
    """Seconds from a number or a string like ``30s``, ``5m``, ``1h``; ValueError otherwise."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if math.isfinite(value) else None
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if seconds is None or not 0 <= seconds <= MAX_DURATION_S:
        raise ValueError(f"expected a duration like 30s, 5m or 1h (0 to 366d), got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(duration_s)]
#: A finite number (not a bool, not a numeric string).
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_SERVICE = re.compile(r"[A-Za-z0-9_@.:][A-Za-z0-9_@.:\-]{0,254}")


def _service_name(v: str) -> str:
    if not _SERVICE.fullmatch(v):
        raise ValueError(
            f"expected a systemd unit or container name (letters, digits, _ @ . : -, not starting"
            f" with -), got {v!r}"
        )
    return v


def _notify_target(v: str) -> str:
    from rigkit.monitor.notify import parse_target

    try:
        parse_target(v)
    except MonitorError as err:
        raise ValueError(str(err)) from None
    return v


#: A systemd unit or container name: no spaces, no leading "-" (it would read as an option).
ServiceName = Annotated[str, Field(strict=True), AfterValidator(_service_name)]
#: A webhook or SMTP URL (rigkit.monitor.notify.parse_target).
NotifyTarget = Annotated[str, Field(strict=True), AfterValidator(_notify_target)]
Op = Literal[">", ">=", "<", "<=", "==", "!="]
SeverityName = Literal["critical", "warning", "info"]
#: XID classes a rule may name instead of listing numbers (the table is in monitor.alerts).
XidClass = Literal["critical", "application"]
XidCode = Annotated[int, Field(strict=True, ge=0, le=1_000_000)] | XidClass


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- rules: -----------------------------------------------------------------------------------


class RuleSettings(_Settings):
    """One entry of ``rules:`` (see docs/alerts.md). A setting left out keeps the default rule's
    value; for a new rule, the AlertRule default. ``for``/``clear_for``/``quiet`` in seconds."""

    enabled: Annotated[bool, Field(strict=True)] | None = None
    expr: Annotated[str, Field(strict=True)] | None = None
    op: Op | None = None
    threshold: Number | None = None
    clear_threshold: Number | None = None
    for_s: Duration | None = Field(None, alias="for")
    clear_for_s: Duration | None = Field(None, alias="clear_for")
    severity: SeverityName | None = None
    summary: Annotated[str, Field(strict=True, max_length=500)] | None = None
    codes: list[XidCode] | None = None
    exclude_codes: list[XidCode] | None = None
    quiet_s: Duration | None = Field(None, alias="quiet")
    min_util_pct: Annotated[float, Field(strict=True, ge=0, le=100)] | None = None
    relative_to: Literal["slowdown_temp_c", "shutdown_temp_c"] | None = None
    ref_default: Number | None = None
    #: where the default's threshold comes from (documentation; the default rules carry one)
    source: Annotated[str, Field(strict=True)] | None = None

    @field_validator("quiet_s")
    @classmethod
    def _quiet_positive(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("the quiet period must be longer than 0 s")
        return v

    def changes(self) -> dict[str, Any]:
        """The settings given in the file, as AlertRule field names (``source`` left out)."""
        return {k: getattr(self, k) for k in self.model_fields_set if k != "source"}


# --- response: --------------------------------------------------------------------------------


class ConditionSettings(_Settings):
    """A tier condition: temperature >= reference + ``offset_c`` for ``for``."""

    relative_to: Literal["slowdown", "shutdown"] | None = None
    offset_c: Number | None = None
    for_s: Duration | None = Field(None, alias="for")


class Tier1Settings(ConditionSettings):
    enabled: Annotated[bool, Field(strict=True)] | None = None
    power_fraction: Annotated[float, Field(strict=True, ge=0.1, le=1.0)] | None = None
    restore_below: ConditionSettings | None = None


class Tier2Settings(_Settings):
    enabled: Annotated[bool, Field(strict=True)] | None = None
    conditions: Annotated[list[ConditionSettings], Field(min_length=1, max_length=20)] | None = None
    units: Annotated[list[ServiceName], Field(max_length=100)] | None = None
    containers: Annotated[list[ServiceName], Field(max_length=100)] | None = None


class Tier3Settings(_Settings):
    enabled: Annotated[bool, Field(strict=True)] | None = None
    conditions: Annotated[list[ConditionSettings], Field(min_length=1, max_length=20)] | None = None
    rising_for_s: Duration | None = Field(None, alias="rising_for")


class ResponseSettings(_Settings):
    """``response:``: the tiered thermal response (see docs/alerts.md)."""

    slowdown_temp_c: Number | None = None
    shutdown_temp_c: Number | None = None
    tier1: Tier1Settings | None = None
    tier2: Tier2Settings | None = None
    tier3: Tier3Settings | None = None


# --- notify: ----------------------------------------------------------------------------------


class NotifySettings(_Settings):
    """``notify:``: targets (besides ``--notify``) and how the notifier sends to them."""

    targets: Annotated[list[NotifyTarget], Field(max_length=50)] = []
    timeout_s: Duration | None = Field(None, alias="timeout")
    rate_limit: Annotated[int, Field(strict=True, ge=1, le=1000)] | None = None
    dedup_window_s: Duration | None = Field(None, alias="dedup_window")
    min_severity: SeverityName | None = None

    @field_validator("timeout_s")
    @classmethod
    def _timeout_range(cls, v: float | None) -> float | None:
        if v is not None and not 0.1 <= v <= 60:
            raise ValueError(f"the timeout must be between 0.1 s and 60 s, got {v:g} s")
        return v


# --- the file ---------------------------------------------------------------------------------


class MonitorConfig(_Settings):
    """A whole settings file. Every section is optional."""

    rules: dict[str, RuleSettings | None] = {}
    response: ResponseSettings = ResponseSettings()
    notify: NotifySettings = NotifySettings()

    @field_validator("rules", "response", "notify", mode="before")
    @classmethod
    def _empty_section(cls, v: object) -> object:
        return {} if v is None else v


class ConfigFile:
    """A validated settings file with the line of each setting, for later errors."""

    def __init__(self, config: MonitorConfig, file: str, lines: Mapping[Loc, int]) -> None:
        self.config = config
        self.file = file
        self.lines = dict(lines)

    def error(self, loc: Loc, message: str, hint: str | None = None) -> MonitorError:
        """``FILE:LINE: field: message`` for the setting at ``loc`` (or its nearest parent)."""
        return _error(self.file, self.lines, loc, message, hint)


def _fmt_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def _line(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _error(
    file: str, lines: Mapping[Loc, int], loc: Loc, message: str, hint: str | None = None
) -> MonitorError:
    line = _line(lines, loc)
    where = f"{file}:{line}" if line is not None else file
    field = _fmt_loc(loc)
    return MonitorError(
        f"{where}: {field}: {message}" if field else f"{where}: {message}", hint=hint
    )


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The settings model the mapping at ``loc`` is validated against."""
    current: Any = MonitorConfig
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = _field(current, str(part))
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """``Annotated[X, ...]`` -> X, ``X | None`` -> X."""
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
            continue
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
            tp = args[0]
            continue
        return tp


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info
    return None


def setting_names(model: type[BaseModel]) -> list[str]:
    """The names a mapping validated by ``model`` accepts (aliases as written in YAML)."""
    return [info.alias or name for name, info in model.model_fields.items()]


_ROOT_SECTIONS = ("rules", "response", "notify")


def _validation_error(err: ValidationError, file: str, lines: Mapping[Loc, int]) -> MonitorError:
    # One problem per setting: pydantic reports a value that matches no member of a union (an
    # XID number or a class name) once per member, with the member in the location.
    problems: dict[Loc, list[Any]] = {}
    for e in err.errors():
        problems.setdefault(_clean_loc(e["loc"]), []).append(e)
    # unknown settings first: a misspelt key is better reported as unknown than as anything else
    ordered = sorted(problems.items(), key=lambda kv: kv[1][0]["type"] != "extra_forbidden")
    first = _one(ordered[0][0], ordered[0][1], file, lines)
    if len(ordered) > 1:
        others = sorted({ln for loc, _ in ordered[1:] if (ln := _line(lines, loc))})
        more = f"{len(ordered) - 1} more problem{'s' if len(ordered) > 2 else ''}"
        if others:
            more += f" (line{'s' if len(others) > 1 else ''} {', '.join(map(str, others))})"
        return MonitorError(f"{first.message} [{more}]", hint=first.hint)
    return first


def _clean_loc(loc: Any) -> Loc:
    """The location without the union members pydantic puts into it."""
    return tuple(p for p in loc if not (isinstance(p, str) and _is_type_tag(p)))


def _message(e: Any) -> str:
    msg = str(e["msg"]).removeprefix("Value error, ")
    if e["type"] in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping of settings"
    return msg[:1].lower() + msg[1:]


def _one(loc: Loc, errors: list[Any], file: str, lines: Mapping[Loc, int]) -> MonitorError:
    e = errors[0]
    if e["type"] == "extra_forbidden":
        key, parent = str(loc[-1]), loc[:-1]
        model = _model_at(parent)
        names = setting_names(model) if model is not None else list(_ROOT_SECTIONS)
        near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        what = "section" if not parent else "setting"
        hint = f"did you mean {near[0]!r}?" if near else f"known {what}s: {', '.join(names)}"
        return _error(file, lines, loc, f"unknown {what} {key!r}", hint)
    # the members of a union: "input should be a valid integer or 'critical' or 'application'"
    msg = _message(e)
    for other in errors[1:]:
        msg += " or " + _message(other).removeprefix("input should be ")
    got = e.get("input")
    if e["type"] not in ("value_error", "missing") and not isinstance(got, dict | list):
        msg += f", got {got!r}"
    return _error(file, lines, loc, msg)


def _is_type_tag(part: str) -> bool:
    return part in ("float", "int", "str", "bool", "list", "dict") or part.startswith(
        ("function-", "literal[", "constrained-", "nullable[", "union[")
    )


def parse_config(data: Any, file: str, lines: Mapping[Loc, int]) -> ConfigFile:
    """Validate plain data read from ``file``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _error(
            file, lines, (), "expected a mapping with rules:, response: and/or notify: sections"
        )
    try:
        config = MonitorConfig.model_validate(data)
    except ValidationError as err:
        raise _validation_error(err, file, lines) from None
    return ConfigFile(config, file, lines)


def load_config(path: str | Path | None) -> ConfigFile:
    """The settings file at ``path`` (an empty configuration when None)."""
    if path is None:
        return ConfigFile(MonitorConfig(), "<defaults>", {})
    data, lines = read_settings_file(path)
    return parse_config(data, str(path), lines)


@cache
def default_rules_file() -> ConfigFile:
    """The packaged default alert rules (``monitor/data/default-rules.yaml``)."""
    ref = resources.files("rigkit.monitor") / "data" / "default-rules.yaml"
    text = ref.read_text(encoding="utf-8")
    data, lines = read_yaml_text(text, "default-rules.yaml")
    return parse_config(data, "default-rules.yaml", lines)
