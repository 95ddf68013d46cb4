"""The whole pipeline end to end on a few generated images: every stage's artefacts,
the report's tables holding the measured numbers, a rerun that skips finished stages;
and (with stand-in stages) reruns whose inputs changed, forced stages, the stages'
composed configs and their override lists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir

from yolo_slim.errors import PipelineError
from yolo_slim.latency.measure import deployed_precision
from yolo_slim.pipeline import STAGES, run_pipeline

ROOT = Path(__file__).resolve().parents[2]

# what every training stage gets on top of its experiment: tiny batches, 1 epoch, quiet
TINY_TRAIN = ["loader.batch_size=4", "loader.num_workers=0", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
              "logger=csv", "trainer.max_epochs=1", "model.nominal_batch_size=4"]


def _overrides(tmp: Path) -> list[str]:
    return [
        f"paths.root_dir={ROOT}",
        f"paths.log_dir={tmp / 'logs'}",
        f"paths.data_dir={tmp / 'data'}",
        "img_size=64",
        "device=cpu",
        "builtin.n_train=8",
        "builtin.n_val=4",
        "train_overrides=[" + ",".join(f'"{o}"' for o in TINY_TRAIN) + "]",
        "stages=[" + ",".join(STAGES) + "]",  # every stage (the default route skips the gamma sweeps)
        "channel_sweep.percents=[0.3,0.5]",
        "layer_sweep.shortcuts=[1,2]",
        "gate=false",  # one epoch on 8 images learns nothing; test_pipeline_gate_run.py checks the gate
        # ... and for the same reason the sweeps accept any point, or none would name one
        "latency_sweep.budgets=[0.6,0.95]",
        *(f"{sweep}.{key}" for sweep in ("channel_sweep", "layer_sweep", "latency_sweep")
          for key in ("tolerance=1", "keep_map=0", "keep_recall=0", "min_map=0")),
        "benchmark.runs=3",
        "benchmark.warmup=1",
        "export.overrides=['export.exporter=torchscript','export.calibration_images=8']",
        "channel_sweep.overrides=['latency_runs=2']",
        "layer_sweep.overrides=['latency_runs=2']",
        "latency_sweep.overrides=['latency_runs=2','prune.latency.runs=2','prune.latency.report_runs=3']",
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
    for stage in ("channel_sweep", "layer_sweep", "latency_sweep"):
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
    sparse_conv = results["sparsity"]["training"]["convergence"]
    assert (f"pruned from its last weights: val mAP@0.5 {sparse_conv['last_map50']:.3f} at step {sparse_conv['last_step']}; "
            in report)
    slim_ov = results["benchmark"]["deployed"]["slim/openvino_fp32"]
    assert slim_ov["compute"] == "f32"
    assert f"| slim | openvino_fp32 | f32 | {slim_ov['precision']:.3f} | {slim_ov['recall']:.3f} | {slim_ov['mAP50']:.3f} | {slim_ov['latency_ms']:.2f} |" in report
    default = deployed_precision("CPU")
    if default != "f32":  # e.g. bf16 on a CPU with AMX: the IR as deployed is timed too, with export's own P, R, mAP
        lowered = results["benchmark"]["deployed"][f"slim/openvino_fp32_{default}"]
        assert lowered["compute"] == default and lowered["latency_ms"] > 0
        assert lowered["mAP50"] == results["export"]["metrics"]["slim_fp32/fp32_mAP50"]
        assert f"({default}, this device's default)" in report
    assert results["channel_sweep"]["choice"]["setting"] in report
    optimal = json.loads(Path(results["channel_sweep"]["artifacts"]["optimal"]).read_text())
    assert optimal["cfg"] == results["channel_sweep"]["artifacts"]["cfg"]
    # the slim model is the latency sweep's optimal point, chosen by measured latency
    latency_optimal = json.loads(Path(results["latency_sweep"]["artifacts"]["optimal"]).read_text())
    assert latency_optimal["row"]["ov_latency_ms"] > 0 and "measured OpenVINO latency" in latency_optimal["reason"] and "faster than the unpruned model in its job" in latency_optimal["reason"]
    assert results["latency_sweep"]["choice"]["setting"].startswith(("latency latency_budget=0.6", "latency latency_budget=0.95"))
    finetune_record = json.loads((run / "06_finetune" / "stage.json").read_text())
    assert finetune_record["inputs"]["configs"]["train"]["model"]["cfg"].endswith(Path(latency_optimal["cfg"]).name)

    again = _pipeline_py(tmp_path)
    assert again.count("already done") == len(STAGES)
    assert (run / "REPORT.md").read_text() == report


def test_unknown_stage_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"unknown \['prunning'\]; expected a subset of"):
        run_pipeline(_cfg(tmp_path, "stages=[baseline,prunning]"))


def test_a_stage_without_its_inputs_names_what_to_run_first(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"^stage 'sparsity': this stage needs the 'baseline' stage's 'best_weights'; run it first"):
        run_pipeline(_cfg(tmp_path, "stages=[sparsity]"))
    assert not (tmp_path / "run").exists()  # refused before any stage started


DEMO_CFG = ROOT / "conf" / "model" / "cfg" / "yolov3-demo.cfg"


def _stand_ins(monkeypatch, calls: list[str], fail: str | None = None) -> None:
    """Replace every stage by one that records its call and writes a weights file of its own."""
    import yolo_slim.pipeline.runner as runner

    def fake(name: str):
        def run(ctx, stage, configs):
            out = ctx.stage_dir(name)
            out.mkdir(parents=True, exist_ok=True)
            # a forced stage must not find its previous run's files (no resume from them)
            assert not (out / "checkpoints").exists(), name
            if name == fail:
                raise RuntimeError(f"{name} interrupted")
            (out / "checkpoints").mkdir()
            weights = out / "model.weights"
            weights.write_bytes(name.encode())
            calls.append(name)
            return {"metrics": {}, "artifacts": {"cfg": str(DEMO_CFG), **{k: str(weights) for k in ("best_weights", "last_weights", "weights")}}}
        return run

    monkeypatch.setattr(runner, "RUNNERS", {name: fake(name) for name in STAGES})
    monkeypatch.setattr(runner, "write_report", lambda ctx: ctx.run_dir / "REPORT.md")


def test_force_reruns_a_stage_from_scratch_and_every_later_one(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []
    _stand_ins(monkeypatch, calls)
    run_pipeline(_cfg(tmp_path))
    assert calls == list(STAGES)
    calls.clear()
    run_pipeline(_cfg(tmp_path))
    assert calls == []
    run_pipeline(_cfg(tmp_path, "force=[layer_sweep]"))
    assert calls == list(STAGES[STAGES.index("layer_sweep"):])
    with pytest.raises(PipelineError, match=r"force=\['sparse'\]: unknown \['sparse'\]; expected a subset of"):
        run_pipeline(_cfg(tmp_path, "force=[sparse]"))


def test_a_rerun_with_other_inputs_stops_and_says_what_changed(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []
    _stand_ins(monkeypatch, calls)
    run_pipeline(_cfg(tmp_path))
    calls.clear()
    how = r"force=\[baseline\] reruns it and every later stage; run_name=NEW starts another run"
    with pytest.raises(PipelineError, match=rf"^run demo: stage 'baseline' was run with other inputs: .*img_size: 64 -> 96.*\. {how}$"):
        run_pipeline(_cfg(tmp_path, "img_size=96"))
    with pytest.raises(PipelineError, match=r"stage 'baseline' was run with other inputs: the data set's files changed"):
        run_pipeline(_cfg(tmp_path, "builtin.n_train=6"))
    with pytest.raises(PipelineError, match=r"stage 'sparsity' was run with other inputs: callbacks.bn_sparsity.s: 0.06 -> 0.01\. force=\[sparsity\]"):
        run_pipeline(_cfg(tmp_path, 'sparsity.overrides=["callbacks.bn_sparsity.s=0.01"]'))
    (tmp_path / "run" / "01_baseline" / "model.weights").write_bytes(b"retrained elsewhere")
    with pytest.raises(PipelineError, match=r"stage 'sparsity' was run with other inputs: <run>/01_baseline/model.weights: content changed"):
        run_pipeline(_cfg(tmp_path))
    assert calls == []  # nothing ran: every stop came before the changed stage started
    run_pipeline(_cfg(tmp_path, "force=[sparsity]"))
    assert calls == list(STAGES[1:])
    run_pipeline(_cfg(tmp_path, "img_size=96", "run_name=other", f"paths.output_dir={tmp_path / 'other'}"))  # a new run_name starts over


def test_a_sweeps_rule_and_recovery_are_inputs_of_its_stage(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []
    _stand_ins(monkeypatch, calls)
    run_pipeline(_cfg(tmp_path))
    calls.clear()
    with pytest.raises(PipelineError, match=r"stage 'channel_sweep' was run with other inputs: rule.tolerance: 1.0 -> 0.02\. force="):
        run_pipeline(_cfg(tmp_path, "channel_sweep.tolerance=0.02"))
    with pytest.raises(PipelineError, match=r"stage 'channel_sweep' was run with other inputs: recovery.overrides"):
        run_pipeline(_cfg(tmp_path, 'finetune.overrides=["optim=sgd"]'))
    assert calls == []
    run_pipeline(_cfg(tmp_path, "latency_sweep.recover_steps=0", "force=[latency_sweep]"))
    assert calls == list(STAGES[STAGES.index("latency_sweep"):])


def test_an_interrupted_stage_resumes_only_with_its_inputs(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []
    _stand_ins(monkeypatch, calls, fail="sparsity")
    with pytest.raises(PipelineError, match=r"stage 'sparsity' failed: sparsity interrupted\n  log: .*02_sparsity/stage.log"):
        run_pipeline(_cfg(tmp_path))
    record = json.loads((tmp_path / "run" / "02_sparsity" / "stage.json").read_text())
    assert record["finished"] is False and record["inputs"]["configs"]["train"]["weights"] == "<run>/01_baseline/model.weights"
    _stand_ins(monkeypatch, calls)
    with pytest.raises(PipelineError, match=r"stage 'sparsity' was run with other inputs: trainer.max_epochs: 1 -> 2"):
        run_pipeline(_cfg(tmp_path, 'sparsity.overrides=["trainer.max_epochs=2"]'))
    calls.clear()
    run_pipeline(_cfg(tmp_path))
    assert calls == list(STAGES[1:])


def test_stage_configs_are_composed_from_the_override_lists(tmp_path: Path) -> None:
    """`train_overrides` and `<stage>.overrides` as a user types them (each quoted inside the list)."""
    from hydra import initialize_config_dir

    from yolo_slim.config import validate_config
    from yolo_slim.config.command import check_command
    from yolo_slim.pipeline.stages import StageContext, stage_configs

    argv = ['train_overrides=["trainer=ddp","trainer.devices=4"]', 'finetune.overrides=["trainer.max_epochs=3","optim=sgd"]',
            'channel_sweep.overrides=["prune.layer_keep=0.05"]', 'export.overrides=["export.exporter=torchscript","export.opset=17"]',
            "img_size=96", "device=cpu", "latency_sweep.recalibrate_bn=0"]
    cfg = check_command("pipeline", argv, ROOT / "conf").cfg
    ctx = StageContext(validate_config(cfg, "pipeline"), tmp_path, data="my.data", img_size=96, planned=frozenset(STAGES), preflight=True)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        baseline = stage_configs(ctx, "baseline")["train"]
        finetune = stage_configs(ctx, "finetune")["train"]
        sparse = stage_configs(ctx, "sparsity")["train"]
        sweep = stage_configs(ctx, "channel_sweep")
        exports = stage_configs(ctx, "export")
    assert baseline.trainer.strategy == "ddp" and baseline.trainer.devices == 4 and baseline.trainer.max_epochs is None
    assert baseline.budget.demo_data.steps == 3000 and baseline.budget.steps == "auto"
    assert baseline.data == "my.data" and baseline.img_size == 96 and baseline.device == "cpu"
    assert finetune.trainer.max_epochs == 3 and finetune.trainer.devices == 4 and finetune.optim.optimizer._target_ == "torch.optim.SGD"
    # fine-tuning starts from the last pruning stage the run has: latency_sweep, else layer_sweep
    assert finetune.model.cfg == "<latency_sweep.cfg>" and finetune.weights == "<latency_sweep.weights>"
    gamma_route = StageContext(ctx.cfg, tmp_path, data="my.data", img_size=96, planned=frozenset(STAGES) - {"latency_sweep"}, preflight=True)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        assert stage_configs(gamma_route, "finetune")["train"].model.cfg == "<layer_sweep.cfg>"
        # a finished latency_sweep of an earlier stages= list in the same run folder: this run's list decides
        other_route = StageContext(ctx.cfg, tmp_path, data="my.data", img_size=96, preflight=True,
                                   stages=("baseline", "sparsity", "channel_sweep", "layer_sweep", "finetune"),
                                   results={"latency_sweep": {"artifacts": {"cfg": "old.cfg", "weights": "old.weights"}}},
                                   planned=frozenset({"channel_sweep", "layer_sweep", "finetune"}))
        assert stage_configs(other_route, "finetune")["train"].model.cfg == "<layer_sweep.cfg>"
        latency_jobs = stage_configs(ctx, "latency_sweep")
    assert [(c.prune.mode, c.prune.latency_budget, c.prune.latency.device) for c in latency_jobs.values()] == [
        ("latency", b, "cpu") for b in (0.35, 0.45, 0.55, 0.7, 0.85)]
    # the baseline's own model.cfg goes with its weights (its size and its fitted anchors)
    assert sparse.model.cfg == "<baseline.cfg>" and sparse.weights == "<baseline.best_weights>"
    assert [c.prune.global_percent for c in sweep.values()] == [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9] and {c.prune.layer_keep for c in sweep.values()} == {0.05}
    # each point's BatchNorm statistics are re-estimated before it is judged, unless a sweep says 0
    assert {c.prune.recalibrate_bn for c in sweep.values()} == {256}
    assert {c.prune.recalibrate_bn for c in latency_jobs.values()} == {0}
    assert len(exports) == 6 and {c.export.opset for c in exports.values()} == {17} and exports["slim_int8"].export.precision == "int8"
    assert exports["slim_int8"].device == "cpu"  # deploy_device


def test_stage_overrides_may_not_set_what_the_pipeline_sets(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"^stage 'finetune': its overrides set img_size=96, which the pipeline sets for every stage "
                                            r"\(the pipeline gives img_size=64\); set it on pipeline.py instead"):
        run_pipeline(_cfg(tmp_path, 'finetune.overrides=["img_size=96"]'))
    with pytest.raises(PipelineError, match=r"^stage 'baseline': trainer.max_epochs: expected an integer, got 'abc'"):
        run_pipeline(_cfg(tmp_path, 'train_overrides=["trainer.max_epochs=abc"]'))
    assert not (tmp_path / "run").exists()


def test_a_sweep_points_recovery_is_a_short_fine_tune_read_back_on_rerun(tmp_path: Path, monkeypatch) -> None:
    """`<sweep>.recover_steps`: the finetune stage's experiment and overrides for that many steps,
    without early stopping, from the row's pruned model (the sweep's own model for the
    reference); a finished recovery is read back, not trained again."""
    from hydra import initialize_config_dir

    import yolo_slim.train_task as train_task
    from yolo_slim.config import validate_config
    from yolo_slim.config.command import check_command
    from yolo_slim.pipeline.jobs import compose_job, recovery_job, sweep_source
    from yolo_slim.pipeline.recover import UNPRUNED_DIR, recover_point
    from yolo_slim.pipeline.stages import StageContext

    argv = ['finetune.overrides=["optim=sgd"]', "layer_sweep.recover_steps=150", "device=cpu"]
    cfg = check_command("pipeline", argv, ROOT / "conf").cfg
    ctx = StageContext(validate_config(cfg, "pipeline"), tmp_path, data="my.data", img_size=96, planned=frozenset(STAGES), preflight=True)
    row = {"setting": "layer shortcuts=8", "run_dir": str(tmp_path / "shortcuts_8"), "cfg": "a/pruned.cfg", "weights": "a/pruned.weights"}
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        job = recovery_job(ctx, "layer_sweep", tmp_path / "shortcuts_8" / "recover", {"model": {"cfg": row["cfg"]}, "weights": row["weights"]})
        point = compose_job("layer_sweep", job, ctx.composed)
        unpruned = compose_job("layer_sweep", recovery_job(ctx, "layer_sweep", tmp_path / "u", sweep_source(ctx, "layer_sweep")), ctx.composed)
    assert point.experiment.name == "demo_finetune" and point.optim.optimizer._target_ == "torch.optim.SGD"
    assert point.budget.steps == 150 and point.budget.patience_steps is None
    assert point.callbacks.run_plots is None and point.callbacks.model_checkpoint is not None  # a judged model: no plots
    assert point.model.cfg == "a/pruned.cfg" and point.weights == "a/pruned.weights" and point.data == "my.data" and point.img_size == 96
    assert unpruned.model.cfg == "<channel_sweep.cfg>" and unpruned.weights == "<channel_sweep.weights>"

    trained: list[str] = []

    def fake_train(c):  # what a finished training run leaves: convergence.json with its history
        out = Path(str(c.paths.output_dir))
        trained.append(out.name)
        out.mkdir(parents=True, exist_ok=True)
        history = [{"step": 75, "epoch": 1, "map50": 0.40, "recall": 0.5, "precision": 0.2},
                   {"step": 150, "epoch": 2, "map50": 0.38, "recall": 0.6, "precision": 0.2}]
        (out / "convergence.json").write_text(json.dumps({"last_step": 150, "history": history}))
        return {}, {}

    monkeypatch.setattr(train_task, "train", fake_train)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        first = recover_point(ctx, "layer_sweep", row)
        again = recover_point(ctx, "layer_sweep", row)
        recover_point(ctx, "layer_sweep", None)
    assert first == again == {"mAP50": 0.40, "recall": 0.5, "precision": 0.2, "steps": 150, "best_step": 75}
    assert trained == ["recover", UNPRUNED_DIR]  # the rerun read the first one back

    # the layer sweep's unpruned model is channel_sweep's optimal point: its recovery is read back
    # when it ran as many steps, trained again when it did not
    optimal = tmp_path / "03_channel_sweep" / "global_percent_0.85"
    ctx.results["channel_sweep"] = {"artifacts": {"cfg": str(optimal / "pruned.cfg"), "weights": str(optimal / "pruned.weights")}}
    ctx.run_dir = tmp_path / "run2"
    ctx.cfg.channel_sweep.recover_steps = 150  # as many steps as layer_sweep's
    fake_train(SimpleNamespace(paths=SimpleNamespace(output_dir=optimal / "recover")))
    trained.clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        assert recover_point(ctx, "layer_sweep", None)["mAP50"] == 0.40 and trained == []
        ctx.cfg.layer_sweep.recover_steps = 100
        recover_point(ctx, "layer_sweep", None)
    assert trained == [UNPRUNED_DIR]
