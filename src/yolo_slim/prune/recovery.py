"""Judging sweep points after a short fine-tune ("recovery"), not only as cut.

A sweep point is judged by its mAP@0.5 right after surgery (and BatchNorm
re-calibration), but the slim model that ships is fine-tuned, and fine-tuning wins
back much of what a cut lost: on a hundred aerial tiles, removing 8 residual units
measured 0.438 against 0.623 as cut and 0.733 against 0.741 (the 6-unit point) after
fine-tuning. So the cut-only judgement rejects points that fine-tuning would keep.
NetAdapt (Yang et al., ECCV 2018) judges each candidate after a short-term fine-tune
for that reason.

Here a point the rule rejects as cut may be judged again after ``steps`` optimizer
steps of fine-tuning, against the unpruned model fine-tuned the same way (so the
steps' own gain, e.g. winning back what sparsity training cost, is not credited to
the cut). `recover_rejected` walks the rows from the most BFLOPs to the fewest and
stops at the first point rejected even after recovery: a stronger cut of the same
model seldom recovers better, and each recovery costs a short training run.

A row's recovered metrics live under its ``recovered`` key (``mAP50``, ``recall``,
``precision``, ``steps``); `judged` gives the pair of metric dicts a row is judged
by. Rows without it are judged as cut.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from yolo_slim.prune.accept import Acceptance

RECOVERED = "recovered"
"""Row key of the metrics after the short fine-tune."""

Recover = Callable[[Mapping[str, Any] | None], Mapping[str, Any]]
"""Fine-tunes a row's pruned model (None: the unpruned one) for the recovery steps;
returns its ``mAP50``, ``recall``, ``precision`` and ``steps``."""


def judged(row: Mapping[str, Any], reference: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(the point's metrics, the reference's) that `row` is judged by: both recovered
    when both have been, else both as cut."""
    if RECOVERED in row and RECOVERED in reference:
        return row[RECOVERED], reference[RECOVERED]
    return row, reference


def verdict(acceptance: Acceptance, row: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    """`Acceptance.verdict` on the metrics `judged` picks, saying so when they are the recovered ones."""
    point, ref = judged(row, reference)
    text = acceptance.verdict(point, ref)
    if point is row:
        return text
    return f"{text} after {int(point.get('steps', 0))} steps of fine-tuning (as cut: {acceptance.verdict(row, reference)})"


def accepts(acceptance: Acceptance, row: Mapping[str, Any], reference: Mapping[str, Any]) -> bool:
    return acceptance.accepts(*judged(row, reference))


def kept_fraction(row: Mapping[str, Any], reference: Mapping[str, Any]) -> float:
    """The share of its reference's mAP@0.5 that `row` keeps, on the metrics `judged` picks
    (rows judged as cut and after a fine-tune compare on this, not on raw mAP@0.5)."""
    point, ref = judged(row, reference)
    return float(point["mAP50"]) / max(float(ref["mAP50"]), 1e-12)


def recover_rejected(rows: Sequence[dict[str, Any]], reference: dict[str, Any], acceptance: Acceptance,
                     recover: Recover) -> int:
    """Recover the points `acceptance` rejects as cut, strongest-last, until one fails.

    Rows and the reference gain a ``recovered`` entry in place (the reference only
    when some row needs it). A failed job's row (no mAP@0.5) is skipped.

    Returns:
        The number of pruned rows recovered.
    """
    if acceptance.reference_problem(reference) is not None:
        return 0  # the unpruned model learned nothing: nothing is accepted either way
    done = 0
    for row in sorted((r for r in rows if r.get("mAP50") is not None), key=lambda r: -float(r["bflops"])):
        if RECOVERED not in row and acceptance.accepts(row, reference):
            continue
        if RECOVERED not in reference:
            reference[RECOVERED] = dict(recover(None))
        if RECOVERED not in row:
            row[RECOVERED] = dict(recover(row))
            done += 1
        if not acceptance.accepts(row[RECOVERED], reference[RECOVERED]):
            break
    return done


__all__ = ["RECOVERED", "Recover", "accepts", "judged", "kept_fraction", "recover_rejected", "verdict"]
