"""validate_config and check_command: every misuse is one line naming the key and what was expected."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf, open_dict

from app_configs import CONF, compose_config
from yolo_slim.config import validate_config
from yolo_slim.config.command import check_command
from yolo_slim.errors import ConfigError, PipelineError


def check(app: str, *argv: str):
    return check_command(app, list(argv), CONF).cfg


@pytest.mark.parametrize(
    ("app", "argv", "message"),
    [
        ("prune", ["prune.global_percent=abc"], r"prune.global_percent: expected a float, got 'abc'"),
        ("prune", ["model.cfg=x", "prune.search_options.coarse=2.5"], r"prune.search_options.coarse: expected an integer, got 2.5"),
        ("prune", ["model.cfg=x", "prune.search=maybe"], r"prune.search: expected true or false, got 'maybe'"),
        ("prune", ["model.cfg=x", "prune=latency", "prune.latency_budget=half"], r"prune.latency_budget: expected a float, got 'half'"),
        ("prune", ["model.cfg=x", "prune.latency_budget_ms=fast"], r"prune.latency_budget_ms: expected a float, got 'fast'"),
        ("prune", ["model.cfg=x", "prune.latency.threads=two"], r"prune.latency.threads: expected an integer, got 'two'"),
        ("prune", ["model.cfg=x", "prune.latency.report=sometimes"], r"prune.latency.report: expected true or false, got 'sometimes'"),
        ("train", ["loader.augment.mosaic=lots"], r"loader.augment.mosaic: expected a float, got 'lots'"),
        ("train", ["img_size=big"], r"img_size: expected an integer, got 'big'"),
        ("train", ["img_size=-32"], r"img_size: expected a positive number of pixels or null \(the model's own size\), got -32"),
        ("train", ["trainer.max_epochs=1.5"], r"trainer.max_epochs: expected an integer, got 1.5"),
        ("train", ["experiment=demo_sparse", "weights=w", "callbacks.bn_sparsity.s=strong"], r"callbacks.bn_sparsity.s: expected a float, got 'strong'"),
        ("export", ["model.cfg=x", "export.dynamic=batch"], r"export.dynamic: expected a list \[a,b,...\], got 'batch'"),
        ("detect", ["weights=a.xml", "source=a.mp4", "max_frames=ten"], r"max_frames: expected an integer, got 'ten'"),
        ("pipeline", ["benchmark.runs=many"], r"benchmark.runs: expected an integer, got 'many'"),
    ],
)
def test_a_wrong_type_is_one_line_naming_key_and_type(app, argv, message) -> None:
    with pytest.raises(ConfigError, match=f"^{message}$"):
        check(app, *argv)


@pytest.mark.parametrize(
    ("app", "argv", "message"),
    [
        ("prune", ["model.cfg=x", "prune.globl_percent=0.5"], r"prune.globl_percent: unknown key \(did you mean prune.global_percent\?\)"),
        ("prune", ["model.cfg=x", "prune.latency.thread=2"], r"prune.latency.thread: unknown key \(did you mean prune.latency.threads\?\)"),
        ("train", ["loader.batchsize=8"], r"loader.batchsize: unknown key \(did you mean loader.batch_size\?\)"),
        ("export", ["model.cfg=x", "imgsize=320"], r"imgsize: unknown key \(did you mean img_size\?\)"),
        ("train", ["+trainer.max_epoch=3"], r"trainer.max_epoch: not an argument of pytorch_lightning.Trainer"),
        ("train", ["experiment=yolov5_baseline"], r"experiment=yolov5_baseline: no such experiment \(available: demo, demo_baseline, .*\)"),
        ("train", ["optim=lion"], r"optim=lion: no such optim \(available: adam, sgd\)"),
    ],
)
def test_an_unknown_key_or_choice_is_one_line(app, argv, message) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        check(app, *argv)


@pytest.mark.parametrize(
    ("app", "argv", "message"),
    [
        ("train", ["data.data=my.data"], r"data.data=my.data: this is data=my.data now"),
        ("prune", ["data.data=none"], r"data.data=none: this is data=none now"),
        ("pipeline", ["dataset=my.data"], r"dataset=my.data: this is data=my.data now"),
        ("export", ["dataset=my.data"], r"dataset=my.data: this is data=my.data now"),
        ("train", ["data=custom", "data.data=x"], r"data=custom is gone: write data=PATH \(a .data file or dataset folder\)"),
        ("train", ["data.batch_size=8"], r"data.batch_size=8: this is loader.batch_size=8 now"),
        ("train", ["data.builtin.n_train=8"], r"data.builtin.n_train=8: this is builtin.n_train=8 now"),
        ("export", ["export.img_size=416"], r"export.img_size=416: this is img_size=416 now"),
        ("train", ["img_size=256", "data.img_size=160"], r"data.img_size=160: this is img_size=160 now; you also gave img_size=256, which disagrees"),
        ("train", ["trainer=gpu"], r"trainer=gpu is gone: write device=gpu"),
        ("train", ["trainer.accelerator=cpu"], r"trainer.accelerator=cpu: this is device=cpu now"),
        ("train", ["model.val.conf_thres=0.01"], r"model.val.conf_thres=0.01: this is eval.conf_thres=0.01 now"),
        ("export", ["export.out_dir=x"], r"export.out_dir=x: this is paths.output_dir=x now"),
        ("prune", ["model=yolov4"], r"model=yolov4: this is model.cfg=yolov4 now"),
    ],
)
def test_an_old_spelling_names_the_new_one(app, argv, message) -> None:
    with pytest.raises(ConfigError, match=f"^{message} \\(README: Changes for existing run folders and scripts\\)$"):
        check(app, *argv)


def test_device_is_one_word_checked_before_any_work(monkeypatch) -> None:
    assert check("train", "device=CPU").device == "cpu"
    assert check("prune", "model.cfg=x", "device=Auto").device == "auto"
    with pytest.raises(ConfigError, match=r"^device: expected auto, cpu or gpu, got 'cuda' \(the GPU is device=gpu\)$"):
        check("prune", "model.cfg=x", "device=cuda")
    monkeypatch.setattr("yolo_slim.config.devices._cuda_available", lambda: False)
    for app in ("train", "prune"):
        with pytest.raises(ConfigError, match=r"^device=gpu but no CUDA device is visible; use device=cpu or device=auto$"):
            check(app, "model.cfg=x", "device=gpu") if app == "prune" else check(app, "device=gpu")
    monkeypatch.setattr("yolo_slim.config.devices._openvino_devices", lambda: ["CPU"])
    with pytest.raises(ConfigError, match=r"^device=gpu but OpenVINO sees no GPU \(devices: CPU\); use device=cpu or device=auto$"):
        check("detect", "weights=a.xml", "source=a.mp4", "device=gpu")
    with pytest.raises(ConfigError, match=r"^deploy_device=gpu but OpenVINO sees no GPU"):
        check("pipeline", "deploy_device=GPU")
    with pytest.raises(ConfigError, match=r"^prune.latency.device=gpu but OpenVINO sees no GPU \(devices: CPU\); use prune.latency.device=cpu"):
        check("prune", "model.cfg=x", "prune.latency.device=gpu")
    with pytest.raises(ConfigError, match=r"^prune.latency.device: expected auto, cpu or gpu, got 'GPU.1'$"):
        check("prune", "model.cfg=x", "prune.latency.device=GPU.1")
    assert check("prune", "model.cfg=x", "prune.latency.device=CPU").prune.latency.device == "cpu"
    monkeypatch.setattr("yolo_slim.config.devices._cuda_available", lambda: True)
    assert check("train", "device=gpu").device == "gpu"


def test_required_values_of_the_apps_themselves() -> None:
    with pytest.raises(ConfigError, match=r"^export.py needs model.cfg=NAME_OR_PATH \(a zoo name or .cfg file\), or weights=PATH.ckpt"):
        check("export")
    assert check("export", "weights=run/last.ckpt").model.cfg is None  # the checkpoint carries its cfg
    with pytest.raises(ConfigError, match=r"^prune.py needs model.cfg=NAME_OR_PATH"):
        check("prune", "weights=best.weights")
    with pytest.raises(ConfigError, match=r"^detect.py needs source=SOURCE \(a video file, image folder"):
        check("detect", "weights=a.xml")
    with pytest.raises(ConfigError, match=r"^train.py needs data=builtin or data=PATH"):
        check("train", "data=none")
    assert check("prune", "model.cfg=x", "data=none").data == "none"  # a cost-only report


def test_cfg_job_shows_required_values_as_null_without_failing() -> None:
    checked = check_command("train", ["experiment=yolov4_sparse", "--cfg", "job"], CONF)
    assert checked.cfg.weights is None and checked.cfg.data is None


def test_override_lists_quote_each_override() -> None:
    with pytest.raises(ConfigError, match=r"^cannot parse 'train_overrides=\[trainer=ddp,trainer.devices=4\]': .*quote each override inside "
                                          r"the list, e.g. 'train_overrides=\[\"trainer=ddp\",\"trainer.devices=4\"\]'"):
        check("pipeline", "train_overrides=[trainer=ddp,trainer.devices=4]")
    cfg = check("pipeline", 'train_overrides=["trainer=ddp","trainer.devices=4"]', "layer_sweep.overrides=['prune.channel_multiple=8']")
    assert list(cfg.train_overrides) == ["trainer=ddp", "trainer.devices=4"] and list(cfg.layer_sweep.overrides) == ["prune.channel_multiple=8"]


def test_multirun_checks_every_swept_value() -> None:
    with pytest.raises(ConfigError, match=r"^prune.global_percent: expected a float, got 'abc'$"):
        check("prune", "-m", "model.cfg=x", "prune.global_percent=0.5,0.6,abc")
    assert check("train", "-m", "data=a.data,b.data").data == "a.data"  # one job per data set


def test_stage_names_and_requires_typos() -> None:
    with pytest.raises(PipelineError, match=r"^stages=\['baseline', 'prunning'\]: unknown \['prunning'\]"):
        check("pipeline", "stages=[baseline,prunning]")
    cfg = compose_config("train")
    with open_dict(cfg):
        cfg.requires.weigths = "PATH (a typo in an experiment file)"
    with pytest.raises(ConfigError, match=r"^requires.weigths: the config has no key 'weigths'"):
        validate_config(cfg, "train")


def test_validated_config_is_typed_and_plain() -> None:
    cfg = check("prune", "model.cfg=x", "prune.global_percent=0.5", "loader.batch_size=8", "prune.search=yes")
    assert cfg.prune.global_percent == 0.5 and cfg.loader.batch_size == 8 and cfg.prune.search is True
    assert OmegaConf.get_type(cfg) is dict  # a plain DictConfig, as the tasks and Hydra's instantiate expect


@pytest.mark.parametrize(
    ("app", "argv", "message"),
    [
        ("prune", ["model.cfg=x", "prune.cut_by=share"], r"prune.cut_by='share': expected threshold or quota \(what global_percent means; docs/pruning.md\)"),
        ("prune", ["model.cfg=x", "prune.keep_map=1.5"], r"prune.keep_map=1.5 must be a number in \[0, 1\] \(kept fraction of the unpruned mAP@0.5\)"),
        ("prune", ["model.cfg=x", "prune.keep_recall=much"], r"prune.keep_recall: expected a float, got 'much'"),
        ("pipeline", ["channel_sweep.keep_recall=2"], r"channel_sweep.keep_recall=2 must be a number in \[0, 1\] \(kept fraction of the unpruned recall\)"),
        ("pipeline", ["layer_sweep.tolerance=-0.1"], r"layer_sweep.tolerance=-0.1 must be a number >= 0 \(absolute mAP@0.5 loss, 0.01 = 1 point\)"),
        ("pipeline", ["layer_sweep.min_map=null"], r"layer_sweep.min_map: .*"),
        ("pipeline", ["layer_sweep.recalibrate_bn=-1"], r"layer_sweep.recalibrate_bn=-1 must be an integer >= 0 \(training images to re-estimate BatchNorm statistics on after surgery; 0: off\)"),
        ("prune", ["model.cfg=x", "prune.recalibrate_bn=-8"], r"prune.recalibrate_bn=-8 must be an integer >= 0 .*"),
        ("pipeline", ["layer_sweep.recover_steps=-5"], r"layer_sweep.recover_steps=-5 must be an integer >= 0 .*"),
        ("prune", ["model.cfg=x", "prune.latency_measured_rounds=-1"], r"prune.latency_measured_rounds=-1: expected an integer >= 0 .*"),
        ("prune", ["model.cfg=x", "prune.latency_tolerance=1.5"], r"prune.latency_tolerance=1.5: expected a number between 0 and 1 .*"),
    ],
)
def test_the_pruning_rule_keys_are_checked_before_any_work(app, argv, message) -> None:
    with pytest.raises(ConfigError, match=f"^{message}$"):
        check(app, *argv)


def test_the_pruning_rule_keys_reach_the_validated_config() -> None:
    p = check("prune", "model.cfg=x", "prune.cut_by=quota", "prune.keep_map=0.9").prune
    assert (p.cut_by, p.tolerance, p.keep_map, p.keep_recall, p.min_map) == ("quota", 0.01, 0.9, 0.8, 0.1)
    s = check("pipeline", "channel_sweep.keep_recall=0.5").channel_sweep
    assert (s.tolerance, s.keep_map, s.keep_recall, s.min_map, s.recover_steps) == (0.01, 0.95, 0.5, 0.1, 200)
