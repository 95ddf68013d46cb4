"""The whole pipeline end to end on a few generated images: every stage's artefacts,
the report's tables holding the measured numbers, and a rerun that skips finished
stages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from tiny_runs import QUIET_CPU_TRAINER, TINY_DATA

from yolo_slim.errors import PipelineError
from yolo_slim.pipeline import STAGES, run_pipeline

ROOT = Path(__file__).resolve().parents[2]

TINY_TRAIN = [*TINY_DATA, *QUIET_CPU_TRAINER, "trainer.max_epochs=1", "model.nominal_batch_size=4"]


def _overrides(tmp: Path) -> list[str]:
    return [
        f"paths.root_dir={ROOT}",
        f"paths.log_dir={tmp / 'logs'}",
        f"paths.data_dir={tmp / 'data'}",
        "img_size=64",
        "train_overrides=[" + ",".join(f"'{o}'" for o in TINY_TRAIN) + "]",
        "channel_sweep.percents=[0.3,0.5]",
        "layer_sweep.shortcuts=[1,2]",
        # one epoch on 8 images learns nothing: accept any point, or no sweep would name one
        *(f"{sweep}.{key}" for sweep in ("channel_sweep", "layer_sweep")
          for key in ("tolerance=1", "keep_map=0", "keep_recall=0", "min_map=0")),
        "benchmark.runs=3",
        "benchmark.warmup=1",
        "export.overrides=['export.exporter=torchscript','export.calibration_images=8']",
        "channel_sweep.overrides=['latency_runs=2']",
        "layer_sweep.overrides=['latency_runs=2']",
    ]


def _cfg(tmp: Path, *overrides: str):
    base = [*_overrides(tmp), f"paths.output_dir={tmp / 'run'}"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("pipeline", overrides=[*base, *overrides])


def _pipeline_py(tmp: Path) -> str:
    """Run `pipeline.py` as a user would (in its own process: the stages load
    OpenVINO, ONNX Runtime and Lightning, which this test process need not share)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "pipeline.py"), *_overrides(tmp), f"hydra.run.dir={tmp / 'run'}"],
        capture_output=True, text=True, timeout=900, check=False, cwd=tmp,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


@pytest.mark.openvino
def test_pipeline_end_to_end_and_resume(tmp_path: Path) -> None:
    out = _pipeline_py(tmp_path)
    run = tmp_path / "run"
    assert "pipeline: report" in out
    results = {name: json.loads((run / f"{i:02d}_{name}" / "stage.json").read_text()) for i, name in enumerate(STAGES, 1)}
    for i, name in enumerate(STAGES, 1):
        assert (run / f"{i:02d}_{name}" / "stage.json").is_file(), name
        assert (run / f"{i:02d}_{name}" / "stage.log").stat().st_size > 0, name
    for key in ("best_weights", "last_weights", "cfg", "last_ckpt"):
        assert Path(results["baseline"]["artifacts"][key]).is_file()
        assert Path(results["finetune"]["artifacts"][key]).is_file()
    assert (run / "02_sparsity" / "gamma_hist.png").is_file()
    for stage in ("channel_sweep", "layer_sweep"):
        art = results[stage]["artifacts"]
        for key in ("cfg", "weights", "table_md", "table_csv", "plot", "optimal"):
            assert Path(art[key]).is_file(), (stage, key)
    for model in ("baseline", "slim"):
        for precision in ("fp32", "fp16", "int8"):
            assert Path(results["export"]["artifacts"][f"{model}_{precision}_xml"]).is_file()
    for key in ("gamma", "pr", "sample"):
        assert Path(results["benchmark"]["artifacts"][key]).is_file()

    report = (run / "REPORT.md").read_text()
    rows = results["benchmark"]["rows"]
    assert f"| baseline | {rows['baseline']['precision']:.3f} | {rows['baseline']['recall']:.3f} | {rows['baseline']['mAP50']:.3f} |" in report
    assert f"{rows['slim']['bflops']:.3f} |" in report
    slim_ov = results["benchmark"]["deployed"]["slim/openvino_fp32"]
    assert f"| slim | openvino_fp32 | {slim_ov['precision']:.3f} | {slim_ov['recall']:.3f} | {slim_ov['mAP50']:.3f} | {slim_ov['latency_ms']:.2f} |" in report
    assert results["channel_sweep"]["choice"]["setting"] in report
    optimal = json.loads(Path(results["channel_sweep"]["artifacts"]["optimal"]).read_text())
    assert optimal["cfg"] == results["channel_sweep"]["artifacts"]["cfg"]

    again = _pipeline_py(tmp_path)
    assert again.count("already done") == len(STAGES)
    assert (run / "REPORT.md").read_text() == report


def test_unknown_stage_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"unknown \['prunning'\]; expected a subset of"):
        run_pipeline(_cfg(tmp_path, "stages=[baseline,prunning]"))


def test_a_stage_without_its_inputs_names_what_to_run_first(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"stage 'sparsity' failed: .*needs the 'baseline' stage's 'best_weights'.*\n  log: .*02_sparsity/stage.log"):
        run_pipeline(_cfg(tmp_path, "stages=[sparsity]"))


def test_force_reruns_a_stage_from_scratch_and_every_later_one(tmp_path: Path, monkeypatch) -> None:
    import yolo_slim.pipeline.runner as runner

    calls: list[str] = []

    def fake(name: str):
        def run(ctx):
            out = ctx.stage_dir(name)
            out.mkdir(parents=True, exist_ok=True)
            # a forced stage must not find its previous run's files (no resume from them)
            assert not (out / "checkpoints").exists(), name
            (out / "checkpoints").mkdir()
            calls.append(name)
            return {"metrics": {}, "artifacts": {}}
        return run

    monkeypatch.setattr(runner, "RUNNERS", {name: fake(name) for name in STAGES})
    monkeypatch.setattr(runner, "write_report", lambda ctx: ctx.run_dir / "REPORT.md")
    run_pipeline(_cfg(tmp_path))
    assert calls == list(STAGES)
    calls.clear()
    run_pipeline(_cfg(tmp_path))
    assert calls == []
    run_pipeline(_cfg(tmp_path, "force=[layer_sweep]"))
    assert calls == list(STAGES[STAGES.index("layer_sweep"):])
    with pytest.raises(PipelineError, match=r"force=\['sparse'\]: unknown \['sparse'\]; expected a subset of"):
        run_pipeline(_cfg(tmp_path, "force=[sparse]"))
