"""The gate in the pipeline: an untrained baseline stops the run before sparsity training (one line
with what to do, REPORT.md says why); gate=false goes on; a collapsed sparse model stops it before
the channel sweep."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from tiny_runs import QUIET_CPU_TRAINER

from yolo_slim.errors import PipelineError
from yolo_slim.pipeline import STAGES, run_pipeline

ROOT = Path(__file__).resolve().parents[2]
DEMO_CFG = ROOT / "conf" / "model" / "cfg" / "yolov3-demo.cfg"


def _cfg(tmp: Path, *overrides: str):
    train = ["loader.batch_size=4", "loader.num_workers=0", "model.nominal_batch_size=4", "trainer.max_epochs=1",
             *(o for o in QUIET_CPU_TRAINER if o != "device=cpu")]
    base = [f"paths.root_dir={ROOT}", f"paths.log_dir={tmp / 'logs'}", f"paths.data_dir={tmp / 'data'}",
            f"paths.output_dir={tmp / 'run'}", "img_size=64", "device=cpu", "builtin.n_train=8", "builtin.n_val=4",
            "train_overrides=[" + ",".join(f'"{o}"' for o in train) + "]"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("pipeline", overrides=[*base, *overrides])


def test_an_untrained_baseline_is_not_pruned(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO)  # as Hydra's job logging sets the root logger: the runner and tasks log, not print
    with pytest.raises(PipelineError, match=r"^gate: baseline: its best val mAP@0\.5 is 0\.\d{3}, below baseline\.min_map=0\.1: "
                                            r"it has barely learned\. Check the labels .* or prune anyway with gate=false$"):
        run_pipeline(_cfg(tmp_path, "stages=[baseline,sparsity]"))
    run = tmp_path / "run"
    assert (run / "01_baseline" / "stage.json").is_file() and not (run / "02_sparsity").exists()
    report = (run / "REPORT.md").read_text()
    assert "Gate before pruning the baseline model: FAILED: the run stopped here" in report
    assert "| baseline | up to 2 optimizer steps" in report  # the budget the stage chose
    out = caplog.text
    caplog.clear()
    assert "demo_baseline: up to 2 optimizer steps (= 1 epoch of 8 images at 4 images per step" in out

    run_pipeline(_cfg(tmp_path, "stages=[baseline,sparsity]", "gate=false"))  # the baseline is reused, sparsity goes on
    out = caplog.text
    assert "[baseline] already done" in out and "(gate=false: pruning anyway)" in out
    assert (run / "02_sparsity" / "stage.json").is_file()
    assert "FAILED, pruned anyway (gate=false)" in (run / "REPORT.md").read_text()


def test_a_collapsed_sparse_model_is_not_pruned(tmp_path: Path, monkeypatch) -> None:
    import yolo_slim.pipeline.runner as runner

    ran: list[str] = []
    results = {
        "baseline": {"metrics": {"val/mAP50": 0.3}, "training": {"budget": {"steps": 2002}, "steps_done": 1400,
                     "convergence": {"status": "converged", "best_map50": 0.31, "verdict": "converged: early stop"}}},
        "sparsity": {"metrics": {"val/mAP50": 0.02, "sparsity/frac_below_1e-2": 0.9},
                     "training": {"budget": {"steps": 700}, "steps_done": 700}},
    }

    def fake(name: str):
        def run(ctx, stage, configs):
            out = ctx.stage_dir(name)
            out.mkdir(parents=True, exist_ok=True)
            weights = out / "model.weights"
            weights.write_bytes(name.encode())
            ran.append(name)
            files = {"cfg": str(DEMO_CFG), **{k: str(weights) for k in ("best_weights", "last_weights", "weights")}}
            return {**results.get(name, {}), "artifacts": files}
        return run

    monkeypatch.setattr(runner, "RUNNERS", {name: fake(name) for name in STAGES})
    with pytest.raises(PipelineError, match=r"^gate: sparsity: the sparse model's val mAP@0\.5 fell to 0\.020, 6% of the baseline's "
                                            r"0\.310 \(below sparsity\.keep_map=0\.5\): the penalty was too strong over its 700 steps"):
        run_pipeline(_cfg(tmp_path))
    assert ran == ["baseline", "sparsity"]
