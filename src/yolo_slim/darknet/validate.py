"""Whole-network checks of a parsed cfg, and the one format of a list of cfg problems.

`validate_cfg` runs the shape rules of `shapes.py` at the `[net]` size; the parser
calls it after reading, and every edit of a cfg (classes, input size) calls it again.
"""

from __future__ import annotations

from collections.abc import Sequence

from yolo_slim.darknet.sections import DarknetCfg
from yolo_slim.darknet.shapes import shape_problems
from yolo_slim.errors import CfgError


def format_problems(problems: Sequence[str], source: str) -> str:
    """One message for every problem of one cfg: the problem itself when there is one,
    else a ``source: N problems in darknet cfg:`` header and an indented list."""
    head = f"{source}: {len(problems)} problem{'s' if len(problems) > 1 else ''} in darknet cfg:"
    return head + "\n  " + "\n  ".join(problems) if len(problems) > 1 else problems[0]


def validate_cfg(cfg: DarknetCfg) -> None:
    """Check the network as a whole at its `[net]` size.

    Shortcut inputs equal, route inputs aligned, every head's conv has
    len(mask) * (classes + 5) filters, every head predicts the same classes, the
    input size is a multiple of the largest stride (`shapes.check_input_size`), and
    the parameters stay below `limits.MAX_PARAMS`.

    Raises:
        CfgError: every problem, each with `source:line`.
    """
    problems = shape_problems(cfg)
    if problems:
        raise CfgError(format_problems(problems, cfg.source))
