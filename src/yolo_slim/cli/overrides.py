"""Command-line shorthands that Hydra's grammar cannot express by itself.

`conf/data/` and `conf/model/` are config groups of the training config, so Hydra
reads `data=...` or `model=...` on any command as a group choice. Commands whose own
config has a plain value under that name (the dataset of `pipeline.py` and
`export.py`, the IR of `detect.py`) rename the override before Hydra parses it.
"""

from __future__ import annotations

from collections.abc import Sequence


def rename_override(argv: Sequence[str], name: str, key: str) -> list[str]:
    """`argv` with every `name=VALUE` turned into `key=VALUE` (other arguments kept).

    Example: `rename_override(["pipeline.py", "data=my.data"], "data", "dataset")`
    gives `["pipeline.py", "dataset=my.data"]`.
    """
    prefix = f"{name}="
    return [f"{key}={arg[len(prefix):]}" if arg.startswith(prefix) else arg for arg in argv]
