"""One-line messages for what Hydra and OmegaConf raise about a config.

Hydra prints its composition errors over several lines (with a hint to set
HYDRA_FULL_ERROR) and OmegaConf's errors carry `full_key`/`object_type` blocks. The
apps print one line instead, naming the key and what was expected; these functions
turn the exceptions into that line.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

_TYPE_WORDS = (
    (re.compile(r"converted to Float"), "a float"),
    (re.compile(r"converted to Integer"), "an integer"),
    (re.compile(r"not a valid bool"), "true or false"),
    (re.compile(r"to string"), "a string"),
    (re.compile(r"ListConfig, list or tuple|subclass of ListConfig"), "a list [a,b,...]"),
    (re.compile(r"DictConfig|subclass of \w+|Mapping"), "a block of keys"),
)


def one_line(text: str) -> str:
    """`text` with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(text).split())


def _first_line(text: str) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else ""


def type_error(exc: ValidationError) -> str:
    """`key: expected a float, got 'abc'` for a value of the wrong type."""
    msg = _first_line(exc.msg)
    expected = next((word for pattern, word in _TYPE_WORDS if pattern.search(msg)), None)
    key = exc.full_key or "config"
    if expected is None:
        return f"{key}: {msg}"
    value = exc.value
    if isinstance(value, (DictConfig,)) or OmegaConf.is_list(value):
        value = OmegaConf.to_container(value)
    return f"{key}: expected {expected}, got {value!r}"


def _children(schema: Any, parent: str) -> list[str]:
    node = OmegaConf.select(schema, parent) if parent else schema
    return [str(k) for k in node.keys()] if isinstance(node, DictConfig) and not OmegaConf.is_missing(schema, parent or "") else []


def unknown_key(full_key: str, schema: DictConfig | None = None) -> str:
    """`key: unknown key (did you mean ...?)`, suggesting close names from `schema`."""
    parent, _, last = full_key.rpartition(".")
    hint = ""
    if schema is not None:
        try:
            close = difflib.get_close_matches(last, _children(schema, parent), n=1, cutoff=0.6)
        except OmegaConfBaseException:
            close = []
        if close:
            hint = f" (did you mean {parent + '.' if parent else ''}{close[0]}?)"
    return f"{full_key}: unknown key{hint}"


def omegaconf_error(exc: OmegaConfBaseException, schema: DictConfig | None = None) -> str:
    """The one line for an OmegaConf exception raised while merging or reading a config."""
    if isinstance(exc, ValidationError):
        return type_error(exc)
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)) and getattr(exc, "full_key", None):
        return unknown_key(str(exc.full_key), schema)
    key = getattr(exc, "full_key", None)
    msg = _first_line(getattr(exc, "msg", None) or str(exc))
    return f"{key}: {msg}" if key else msg


def hydra_error(exc: Exception, schema: DictConfig | None = None) -> str:
    """The one line for an exception Hydra raised while composing a config.

    Unknown keys (`Key 'x' is not in struct`) become `key: unknown key (did you mean
    ...?)`; a missing config group option lists the available ones.
    """
    from hydra.errors import MissingConfigException

    cause = exc.__cause__
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None):
        return unknown_key(str(cause.full_key), schema) + "; to add a key on purpose, write +KEY=VALUE"
    if isinstance(cause, OmegaConfBaseException):
        return omegaconf_error(cause, schema)
    text = str(exc)
    if isinstance(exc, MissingConfigException):
        found = re.search(r"Could not find '([^']+)'", text)
        options = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], flags=re.MULTILINE)
        what = found.group(1) if found else one_line(_first_line(text))
        group, _, choice = what.rpartition("/")
        if group and options:
            return f"{group}={choice}: no such {group} (available: {', '.join(options)})"
        return f"cannot find config {what!r}"
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.startswith("See https://hydra.cc")]
    return one_line("; ".join(lines[:4])) if lines else type(exc).__name__
