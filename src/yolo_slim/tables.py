"""Markdown tables and result rows, shared by every report the package writes.

The prune task's `report.md` (`yolo_slim.prune.report`), the sweep's `sweep.md`
(`yolo_slim.prune.sweep`) and the pipeline's `REPORT.md` (`yolo_slim.pipeline.report`)
build their tables here: `cell` formats one value (``-`` where it is missing),
`markdown_table` lays out a header, its rule and the rows, and `cost_row` is the cost
part of a result row (params, `.weights` MiB, BFLOPs), the same keys in every report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from yolo_slim.darknet.cfg import DarknetCfg
from yolo_slim.metrics.cost import count_cost

MISSING = "-"
"""What a cell shows for a value the row does not have (quality in cost-only runs)."""


def cell(value: Any, spec: str = "", cast: Callable[[Any], Any] = float, missing: str = MISSING) -> str:
    """One table cell: `format(cast(value), spec)`, or `missing` when `value` is None.

    Args:
        value: the raw value (a number, or None).
        spec: a format spec, e.g. ``".4f"``, ``","``, ``"+.4f"``.
        cast: applied before formatting (``float`` by default; ``int`` for counts).
        missing: the text of a missing value.
    """
    return missing if value is None else format(cast(value), spec)


def markdown_row(cells: Iterable[str]) -> str:
    """One markdown table line, ``| a | b |``."""
    return "| " + " | ".join(cells) + " |"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table as lines: the header, the ``|---|`` rule and one line per row.

    Args:
        header: the column titles.
        rows: each row's cells, already formatted (`cell`), as many as `header`.
    """
    return [markdown_row(header), "|" + "---|" * len(header), *(markdown_row(r) for r in rows)]


def cost_row(cfg: DarknetCfg, hw: tuple[int, int]) -> dict[str, Any]:
    """The cost keys of a result row: ``params`` (int), ``weights_mib`` (the darknet
    `.weights` size in MiB) and ``bflops`` (darknet's count) of `cfg` at input `hw`
    (height, width in pixels)."""
    cost = count_cost(cfg, hw)
    return {"params": cost.params, "weights_mib": cost.weights_bytes / 2**20, "bflops": cost.bflops}
