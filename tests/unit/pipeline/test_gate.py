"""The gate's checks on stage results: what passes, and the one line (with the exact override) for
a baseline that learned too little or was still improving, and a sparse model that collapsed or
whose gammas did not move."""

from __future__ import annotations

import pytest

from yolo_slim.errors import PipelineError
from yolo_slim.pipeline.gate import check_baseline, check_sparse, enforce


def _baseline(best: float, status: str = "converged", steps: int = 2002) -> dict:
    verdict = "converged: early stop at step 1400" if status == "converged" else "still improving: best +0.040 above"
    return {"metrics": {"val/mAP50": best - 0.01},
            "training": {"budget": {"steps": steps}, "steps_done": 1400,
                         "convergence": {"status": status, "best_map50": best, "verdict": verdict}}}


def _sparse(map50: float, zeroed: float) -> dict:
    return {"metrics": {"val/mAP50": map50, "sparsity/frac_below_1e-2": zeroed},
            "training": {"budget": {"steps": 700}, "steps_done": 700},
            "inputs": {"configs": {"train": {"callbacks": {"bn_sparsity": {"s": 0.06}}}}}}


def test_a_converged_baseline_above_the_floor_passes() -> None:
    check = check_baseline(_baseline(0.31), min_map=0.1)
    assert check.passed and check.line() == "gate: baseline: best val mAP@0.5 0.310 >= 0.1; converged: early stop at step 1400"
    assert enforce(check, True) is check


def test_a_baseline_that_barely_learned_is_not_pruned() -> None:
    check = check_baseline(_baseline(0.053), min_map=0.1)
    assert not check.passed
    line = check.line()
    assert line.startswith("gate: baseline: its best val mAP@0.5 is 0.053, below baseline.min_map=0.1: it has barely learned. Check the labels")
    assert """'baseline.overrides=["budget.steps=4004"]' force=[baseline]""" in line and line.endswith("or prune anyway with gate=false")
    with pytest.raises(PipelineError, match=r"^gate: baseline: its best val mAP@0\.5 is 0\.053, below baseline\.min_map=0\.1"):
        enforce(check, True)
    assert enforce(check, False) is check  # gate=false: the caller prints it and goes on


def test_a_baseline_still_improving_is_not_pruned() -> None:
    check = check_baseline(_baseline(0.25, status="improving", steps=600), min_map=0.1)
    assert not check.passed
    assert check.line() == (
        "gate: baseline: it had not converged when its budget ran out (still improving: best +0.040 above); pruning it now would "
        """measure an unfinished model. Give it more steps ('baseline.overrides=["budget.steps=1200"]' force=[baseline]), """
        "or prune anyway with gate=false")


def test_a_baseline_without_a_record_is_not_pruned() -> None:
    check = check_baseline({"metrics": {"val/mAP50": 0.4}}, min_map=0.1)
    assert not check.passed and "recorded no validation" in check.line() and "force=[baseline]" in check.line()


def test_the_sparse_model_is_checked_against_its_baseline() -> None:
    base = _baseline(0.30)
    assert check_sparse(_sparse(0.24, 0.7), base, keep_map=0.5, min_zeroed=0.3).passed
    collapsed = check_sparse(_sparse(0.05, 0.9), base, keep_map=0.5, min_zeroed=0.3)
    assert not collapsed.passed and collapsed.line().startswith(
        "gate: sparsity: the sparse model's val mAP@0.5 fell to 0.050, 17% of the baseline's 0.300 (below sparsity.keep_map=0.5): "
        "the penalty was too strong over its 700 steps. Lower s")
    assert """Lower s ('sparsity.overrides=["callbacks.bn_sparsity.s=0.03"]', force=[sparsity])""" in collapsed.line()
    assert """'sparsity.overrides=["budget.steps=1400"]'""" in collapsed.line()
    unmoved = check_sparse(_sparse(0.29, 0.04), base, keep_map=0.5, min_zeroed=0.3)
    assert not unmoved.passed and unmoved.line().startswith(
        "gate: sparsity: only 4% of the prunable BatchNorm gammas ended below 1e-2 (sparsity.min_zeroed=0.3): the penalty was too weak")
    assert """Raise s ('sparsity.overrides=["callbacks.bn_sparsity.s=0.12"]', force=[sparsity])""" in unmoved.line()
    missing = check_sparse({"metrics": {}}, base, keep_map=0.5, min_zeroed=0.3)
    assert not missing.passed and "force=[sparsity]" in missing.line()
