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
the cut). A stronger cut of the same model seldom recovers better, and each recovery
costs a short training run, so `recover_rejected` searches: it fine-tunes the first
point rejected as cut (often the only one that needs it: the next stronger one fails
too), and if that one passes, it bisects the stronger ones, fine-tuning the middle of the
bracket and going on in its stronger half if it passed, else in its weaker half. Seven
rejected points of which six recover cost four recoveries instead of seven (on the demo,
about 33 s each); a first point that fails costs one. The rows it passed over keep their
as-cut verdict and say why they were not fine-tuned (``SKIPPED``).

A row's recovered metrics live under its ``recovered`` key (``mAP50``, ``recall``,
``precision``, ``steps``); `judged` gives the pair of metric dicts a row is judged
by. Rows without it are judged as cut.
Each recovery is logged by the caller; a rerun reuses rows recovered before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from yolo_slim.prune.accept import Acceptance

RECOVERED = "recovered"
"""Row key of the metrics after the short fine-tune."""

SKIPPED = "recovery_skipped"
"""Row key, on a row rejected as cut that the bisection did not fine-tune: the setting
of the stronger row that passed after fine-tuning."""

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
        if SKIPPED in row:
            return f"{text}; not fine-tuned: the stronger {row[SKIPPED]} passed after fine-tuning"
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
    """Recover the points `acceptance` rejects as cut, searching for the strongest that passes.

    The rows with an mAP@0.5 (a failed job's row has none and is skipped) are ordered
    from the most BFLOPs to the fewest. Those before the first one rejected as cut pass
    as cut. From there on, the search assumes that passing is monotone: it judges the
    first rejected row after `recover` and stops if it fails; else it judges the middle
    row of the stronger ones (as cut if the rule accepts it so, else after `recover`)
    and halves that bracket until the last passing row and the first failing one are
    next to each other. Rows and the reference gain a ``recovered`` entry in place (the
    reference only when some row needs it); rows recovered in an earlier run are judged
    by it without running again. Rejected rows weaker than the strongest passing one
    that were never fine-tuned get ``SKIPPED``.

    Returns:
        The number of pruned rows recovered in this call.
    """
    if acceptance.reference_problem(reference) is not None:
        return 0  # the unpruned model learned nothing: nothing is accepted either way
    ordered = sorted((r for r in rows if r.get("mAP50") is not None), key=lambda r: -float(r["bflops"]))
    first = next((i for i, r in enumerate(ordered) if RECOVERED in r or not acceptance.accepts(r, reference)), len(ordered))
    bracket = ordered[first:]
    done = 0

    def passes(row: dict[str, Any]) -> bool:
        nonlocal done
        if RECOVERED not in row and acceptance.accepts(row, reference):
            return True
        if RECOVERED not in reference:
            reference[RECOVERED] = dict(recover(None))
        if RECOVERED not in row:
            row[RECOVERED] = dict(recover(row))
            done += 1
        return acceptance.accepts(row[RECOVERED], reference[RECOVERED])

    low, high = -1, len(bracket)  # bracket[low] passes (-1: the rows before it), bracket[high] fails
    if bracket:
        low, high = (0, high) if passes(bracket[0]) else (-1, 0)
    while high - low > 1:
        middle = (low + high) // 2
        if passes(bracket[middle]):
            low = middle
        else:
            high = middle
    if low >= 0:
        for row in bracket[:low]:
            row.pop(SKIPPED, None)
            if RECOVERED not in row and not acceptance.accepts(row, reference):
                row[SKIPPED] = str(bracket[low].get("setting"))
    return done


__all__ = ["RECOVERED", "Recover", "SKIPPED", "accepts", "judged", "kept_fraction", "recover_rejected", "verdict"]
