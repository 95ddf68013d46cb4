"""The gate before pruning: a model that has not learned, or not finished learning, is not pruned.

Two checks, each on a training stage's result (its run's ``summary.json``, kept in the
stage result under ``training``):

* **the baseline**, before sparsity training starts from it: its best val mAP@0.5
  reaches ``baseline.min_map``, and its run had converged (`yolo_slim.lit.convergence`:
  early stopping ended it, or its last window added nothing). Pruning a baseline that
  was still improving measures an unfinished model: the sweep's losses and the
  fine-tuned model's gains are then partly just more training.
* **the sparse model**, before the channel sweep prunes it: it keeps
  ``sparsity.keep_map`` of the baseline's best val mAP@0.5 (else the penalty was too
  strong for its steps: the model collapsed), and ``sparsity.min_zeroed`` of the
  prunable gammas ended below 1e-2 (else the penalty was too weak: the gammas did not
  move, and pruning would cut live channels).

A failed check stops the pipeline with one line saying what was found and what to do,
with the exact override. ``gate=false`` prunes anyway; the report then says which check
failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from yolo_slim.errors import PipelineError

ZEROED_KEY = "sparsity/frac_below_1e-2"


@dataclass(frozen=True)
class GateCheck:
    """One check of the gate.

    Attributes:
        stage: the stage whose model was checked (``baseline``, ``sparsity``).
        passed: whether it may be pruned.
        finding: what was found, one phrase.
        advice: what to do about it (empty when passed).
    """

    stage: str
    passed: bool
    finding: str
    advice: str = ""

    def line(self) -> str:
        """The one line the pipeline stops with (or prints when ``gate=false``)."""
        head = f"gate: {self.stage}: {self.finding}"
        return head if self.passed else f"{head}. {self.advice}"

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "passed": self.passed, "finding": self.finding, "advice": self.advice, "line": self.line()}


def _more_steps(stage: str, result: Mapping[str, Any]) -> str:
    """The override that doubles a training stage's budget, with the force it needs."""
    budget = (result.get("training") or {}).get("budget") or {}
    steps = 2 * int(budget.get("steps") or 500)
    return f"'{stage}.overrides=[\"budget.steps={steps}\"]' force=[{stage}]"


def _s_override(result: Mapping[str, Any], factor: float) -> str:
    """The override of the stage's s times `factor` (its s from the stage's recorded config)."""
    node: Any = result.get("inputs") or {}
    for key in ("configs", "train", "callbacks", "bn_sparsity", "s"):
        node = node.get(key) if isinstance(node, Mapping) else None
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return f"'sparsity.overrides=[\"callbacks.bn_sparsity.s={float(node) * factor:g}\"]'"
    which = "half" if factor < 1 else "twice"
    return f"'sparsity.overrides=[\"callbacks.bn_sparsity.s=S\"]' with S about {which} the experiment's s"


def check_baseline(result: Mapping[str, Any], *, min_map: float) -> GateCheck:
    """Whether the baseline may be sparsity-trained and pruned (module docstring).

    Args:
        result: the baseline stage's result (``training``: its run's summary).
        min_map: the floor of its best val mAP@0.5.
    """
    training = result.get("training") or {}
    conv = training.get("convergence")
    if not conv or conv.get("best_map50") is None:
        return GateCheck("baseline", False, "its run recorded no validation (no convergence verdict)",
                         "Rerun it with force=[baseline], or prune anyway with gate=false")
    best = float(conv["best_map50"])
    if not math.isfinite(best) or best < min_map:
        return GateCheck(
            "baseline", False,
            f"its best val mAP@0.5 is {best:.3f}, below baseline.min_map={min_map:g}: it has barely learned",
            "Check the labels (python -m yolo_slim anchors DATA --img-size N prints the boxes the training sees), "
            f"give it more steps ({_more_steps('baseline', result)}), "
            "or prune anyway with gate=false",
        )
    if conv.get("status") != "converged":
        return GateCheck(
            "baseline", False,
            f"it had not converged when its budget ran out ({conv['verdict']}); pruning it now would measure an unfinished model",
            f"Give it more steps ({_more_steps('baseline', result)}), or prune anyway with gate=false",
        )
    return GateCheck("baseline", True, f"best val mAP@0.5 {best:.3f} >= {min_map:g}; {conv['verdict']}")


def check_sparse(result: Mapping[str, Any], baseline: Mapping[str, Any], *, keep_map: float, min_zeroed: float) -> GateCheck:
    """Whether the sparse model may be pruned, against the baseline it started from (module docstring).

    Args:
        result: the sparsity stage's result (``metrics``: its last validation and gamma figures).
        baseline: the baseline stage's result.
        keep_map: the fraction of the baseline's best val mAP@0.5 the sparse model must keep.
        min_zeroed: the share of prunable gammas that must end below 1e-2.
    """
    metrics = result.get("metrics") or {}
    sparse_map = metrics.get("val/mAP50")
    base_conv = (baseline.get("training") or {}).get("convergence") or {}
    base_map = base_conv.get("best_map50")
    if base_map is None:
        base_map = (baseline.get("metrics") or {}).get("val/mAP50")
    zeroed = metrics.get(ZEROED_KEY)
    if sparse_map is None or base_map is None or zeroed is None:
        return GateCheck("sparsity", False, "its result lacks the val mAP@0.5 or the gamma figures to check",
                         "Rerun it with force=[sparsity], or prune anyway with gate=false")
    steps = (result.get("training") or {}).get("steps_done")
    over = f" over its {steps} steps" if steps else ""
    kept = float(sparse_map) / float(base_map) if base_map else 0.0
    if kept < keep_map:
        return GateCheck(
            "sparsity", False,
            f"the sparse model's val mAP@0.5 fell to {float(sparse_map):.3f}, {kept:.0%} of the baseline's {float(base_map):.3f} "
            f"(below sparsity.keep_map={keep_map:g}): the penalty was too strong{over}",
            f"Lower s ({_s_override(result, 0.5)}, force=[sparsity]) or give it more steps at the same total push "
            f"({_more_steps('sparsity', result)}); or prune anyway with gate=false",
        )
    if float(zeroed) < min_zeroed:
        return GateCheck(
            "sparsity", False,
            f"only {float(zeroed):.0%} of the prunable BatchNorm gammas ended below 1e-2 (sparsity.min_zeroed={min_zeroed:g}): "
            f"the penalty was too weak{over}, and pruning would cut live channels",
            f"Raise s ({_s_override(result, 2.0)}, force=[sparsity]); or prune anyway with gate=false",
        )
    return GateCheck("sparsity", True, f"val mAP@0.5 {float(sparse_map):.3f} ({kept:.0%} of the baseline's), "
                                       f"{float(zeroed):.0%} of the prunable gammas below 1e-2")


def enforce(check: GateCheck, enabled: bool) -> GateCheck:
    """Raise on a failed check when the gate is on; otherwise return it (the caller prints it).

    Raises:
        PipelineError: the check's one line.
    """
    if enabled and not check.passed:
        raise PipelineError(check.line())
    return check


__all__ = ["GateCheck", "check_baseline", "check_sparse", "enforce"]
