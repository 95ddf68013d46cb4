"""The typed schema of every app's config: one dataclass tree per app, shared blocks once.

Hydra composes the YAML files of `conf/` as usual; `yolo_slim.config.validate` then
merges the composed config onto the app's schema here, so a wrong type or an unknown
key becomes one line naming the key. The YAML files hold every default; the schema
holds only names and types (its fields are `MISSING`), so a default is written once.

The blocks every app shares (`paths`, `builtin`, `loader`, `eval`, the experiment
metadata) are defined once and used by each app's root. A stream that adds a key adds
it to the YAML file and to the dataclass of its block here.

Hydra-only keys (`_target_`, `_partial_`, `_recursive_`) and Lightning's open
argument lists (`trainer`, `callbacks`, `logger`, `optim.optimizer`) are typed as
`Any`/`Dict`: they are passed on to the classes they instantiate, which own them.
(The module is long only because it declares every key of seven apps; it holds no logic.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

# ----------------------------------------------------------------------------- shared blocks


@dataclass
class ExperimentInfo:
    """What an experiment overlay says about itself (`experiment:` in conf/experiment/*.yaml).

    Attributes:
        name: the experiment's name (its file name), used in error messages.
        apps: the apps it is for (`train`, `pipeline`, ...).
    """

    name: Optional[str] = None
    apps: List[str] = field(default_factory=list)


@dataclass
class Paths:
    """`conf/paths/default.yaml`: the checkout, the output root and the run dir."""

    root_dir: str = MISSING
    conf_dir: str = MISSING
    output_root: str = MISSING
    log_dir: str = MISSING
    data_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class Builtin:
    """`conf/builtin/default.yaml`: the generated dataset's knobs (`data=builtin`); None: the preset's value."""

    preset: str = MISSING
    n_train: Optional[int] = MISSING
    n_val: Optional[int] = MISSING
    img_size: Optional[int] = MISSING
    seed: Optional[int] = MISSING
    max_objects: Optional[int] = MISSING
    min_size: Optional[float] = MISSING
    max_size: Optional[float] = MISSING
    class_colour: Optional[float] = MISSING


@dataclass
class Loader:
    """`conf/loader/default.yaml`: how images are loaded, checked and augmented."""

    batch_size: int = MISSING
    num_workers: int = MISSING
    cache: bool = MISSING
    strict: bool = MISSING
    val_subset: Optional[int] = MISSING
    augment: Dict[str, float] = MISSING


@dataclass
class Eval:
    """`conf/eval/default.yaml`: NMS and the score P and R are read at, for every mAP."""

    conf_thres: float = MISSING
    iou_thres: float = MISSING
    score_threshold: float = MISSING
    max_det: int = MISSING


@dataclass
class ModelFile:
    """The model of prune and export: a zoo name or `.cfg` (null: the cfg inside a `.ckpt`)."""

    cfg: Optional[str] = MISSING
    classes: Optional[int] = MISSING


@dataclass
class Common:
    """Keys of every app."""

    task_name: str = MISSING
    run_name: str = MISSING
    dry_run: bool = MISSING
    experiment: ExperimentInfo = field(default_factory=ExperimentInfo)
    requires: Dict[str, str] = field(default_factory=dict)
    paths: Paths = field(default_factory=Paths)


# ----------------------------------------------------------------------------- train


@dataclass
class Loss:
    box_gain: float = MISSING
    obj_gain: float = MISSING
    cls_gain: float = MISSING
    iou_kind: str = MISSING
    assign: str = MISSING
    anchor_t: float = MISSING
    iou_t: float = MISSING
    neighbour_cells: bool = MISSING
    balance: Optional[List[float]] = MISSING
    label_smoothing: float = MISSING


@dataclass
class Ema:
    enabled: bool = MISSING
    decay: float = MISSING
    tau: float = MISSING


@dataclass
class Scheduler:
    kind: str = MISSING
    warmup_bias_lr: float = MISSING
    lrf: float = MISSING
    milestones: List[float] = MISSING
    gamma: float = MISSING


@dataclass
class Optim:
    optimizer: Dict[str, Any] = MISSING
    scheduler: Scheduler = field(default_factory=Scheduler)


@dataclass
class TrainModel:
    """`conf/model/*.yaml`: `YoloLitModule`'s arguments (img_size, weights, val come from the top level)."""

    _target_: str = MISSING
    _recursive_: bool = MISSING
    cfg: Optional[str] = MISSING
    classes: Optional[int] = MISSING
    cutoff: Optional[int] = MISSING
    optimizer: Any = MISSING
    scheduler: Any = MISSING
    nominal_batch_size: int = MISSING
    bn_momentum: float = MISSING
    head_priors: bool = MISSING
    fit_anchors: Any = MISSING  # auto | true | false (checked by the train task)
    loss: Loss = field(default_factory=Loss)
    ema: Ema = field(default_factory=Ema)


@dataclass
class BudgetRuleTypes:
    """`budget.rule` (`yolo_slim.lit.budget.BudgetRule`)."""

    min_steps: int = MISSING
    steps_per_class: int = MISSING
    epochs: float = MISSING
    max_steps: Optional[int] = MISSING
    warmup_min_steps: int = MISSING
    warmup_epochs: float = MISSING
    patience_min_steps: int = MISSING
    patience_epochs: float = MISSING


@dataclass
class TrainBudget:
    """`conf/budget/default.yaml`: a run's budget in optimizer steps (numbers or `auto`, checked by `BudgetSpec`)."""

    steps: Any = MISSING
    warmup_steps: Any = MISSING
    patience_steps: Any = MISSING
    min_delta: float = MISSING
    early_stop_from: float = MISSING
    rule: BudgetRuleTypes = field(default_factory=BudgetRuleTypes)
    demo_data: Optional[Dict[str, Any]] = MISSING


@dataclass
class SparsitySchedule:
    kind: str = MISSING
    start: float = MISSING
    factor: float = MISSING
    final: float = MISSING
    keep_percent: float = MISSING


@dataclass
class Sparsity:
    """`conf/sparsity/l1.yaml`, mounted at `callbacks.bn_sparsity`."""

    _target_: str = MISSING
    s: float = MISSING
    scope: str = MISSING
    ignore: List[int] = MISSING
    reference_steps: Optional[int] = MISSING
    schedule: SparsitySchedule = field(default_factory=SparsitySchedule)
    log_every_n_epochs: int = MISSING
    predict_percents: List[float] = MISSING
    plot_path: str = MISSING


@dataclass
class TrainerTypes:
    """Types of the Lightning Trainer arguments conf/trainer/ sets (the block stays open to any other)."""

    _target_: str = MISSING
    default_root_dir: str = MISSING
    max_epochs: Optional[int] = MISSING
    min_epochs: Optional[int] = MISSING
    max_steps: int = MISSING
    devices: Any = MISSING
    num_nodes: int = MISSING
    strategy: Any = MISSING
    sync_batchnorm: bool = MISSING
    precision: Any = MISSING
    accumulate_grad_batches: Optional[int] = MISSING
    gradient_clip_val: Optional[float] = MISSING
    check_val_every_n_epoch: Optional[int] = MISSING
    num_sanity_val_steps: int = MISSING
    log_every_n_steps: int = MISSING
    deterministic: Any = MISSING
    enable_progress_bar: bool = MISSING
    enable_model_summary: bool = MISSING


@dataclass
class TrainConfig(Common):
    """`conf/train.yaml`."""

    seed: Optional[int] = MISSING
    data: Optional[str] = MISSING
    img_size: Optional[int] = MISSING
    device: str = MISSING
    weights: Optional[str] = MISSING
    ckpt_path: Optional[str] = MISSING
    resume: Optional[str] = MISSING
    loader: Loader = field(default_factory=Loader)
    budget: TrainBudget = field(default_factory=TrainBudget)
    builtin: Builtin = field(default_factory=Builtin)
    eval: Eval = field(default_factory=Eval)
    model: TrainModel = field(default_factory=TrainModel)
    optim: Optim = field(default_factory=Optim)
    callbacks: Dict[str, Any] = field(default_factory=dict)
    logger: Dict[str, Any] = field(default_factory=dict)
    trainer: Dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- val


@dataclass
class ValConfig(Common):
    """`conf/val.yaml`."""

    seed: int = MISSING
    model: ModelFile = field(default_factory=ModelFile)
    weights: Optional[str] = MISSING
    data: Optional[str] = MISSING
    img_size: Optional[int] = MISSING
    device: str = MISSING
    loader: Loader = field(default_factory=Loader)
    builtin: Builtin = field(default_factory=Builtin)
    eval: Eval = field(default_factory=Eval)


# ----------------------------------------------------------------------------- predict


@dataclass
class PredictOutput:
    images: bool = MISSING
    video_suffix: str = MISSING
    labels: bool = MISSING
    label_scores: bool = MISSING
    json: bool = MISSING


@dataclass
class PredictConfig(Common):
    """`conf/predict.yaml`."""

    model: ModelFile = field(default_factory=ModelFile)
    weights: Optional[str] = MISSING
    source: Any = MISSING
    data: Optional[str] = MISSING
    names: Optional[List[str]] = MISSING
    img_size: Optional[int] = MISSING
    device: str = MISSING
    conf_thres: float = MISSING
    iou_thres: float = MISSING
    max_det: int = MISSING
    max_frames: Optional[int] = MISSING
    builtin: Builtin = field(default_factory=Builtin)
    output: PredictOutput = field(default_factory=PredictOutput)


# ----------------------------------------------------------------------------- prune


@dataclass
class SearchOptions:
    coarse: int = MISSING
    resolution: Optional[float] = MISSING
    low: Optional[float] = MISSING
    high: Optional[float] = MISSING


@dataclass
class PruneLatency:
    """`prune.latency`: the OpenVINO latency table of the deployment device (`yolo_slim.latency`),
    which `prune=latency` plans with and the report measures both models with."""

    report: bool = MISSING
    device: str = MISSING  # auto | cpu | gpu (checked and lower-cased by validate_config)
    threads: Optional[int] = MISSING
    precision: str = MISSING
    cache_dir: Optional[str] = MISSING
    runs: int = MISSING
    report_runs: int = MISSING
    max_measure_s: float = MISSING


@dataclass
class PruneOptions:
    """`conf/prune/*.yaml`."""

    mode: str = MISSING
    global_percent: float = MISSING
    cut_by: str = MISSING  # threshold | quota (checked by validate, values in yolo_slim.prune.plan.CUT_BY)
    layer_keep: float = MISSING
    channel_multiple: Any = MISSING  # an int >= 1 or "auto" (checked by validate)
    importance: str = MISSING
    aggregate: str = MISSING
    shortcuts: int = MISSING
    recalibrate_bn: int = MISSING
    plan: Optional[str] = MISSING
    tolerance: float = MISSING  # the acceptance rule (yolo_slim.prune.accept.Acceptance, which checks the ranges)
    keep_map: float = MISSING
    keep_recall: float = MISSING
    min_map: float = MISSING
    optimal_axis: str = MISSING  # bflops | latency (yolo_slim.prune.sweep.OPTIMAL_AXES)
    search: bool = MISSING
    search_options: SearchOptions = field(default_factory=SearchOptions)
    latency_budget: float = MISSING
    latency_budget_ms: Optional[float] = MISSING
    latency_units: bool = MISSING
    latency_rounds: int = MISSING
    latency_measured_rounds: int = MISSING
    latency_tolerance: float = MISSING
    latency: PruneLatency = field(default_factory=PruneLatency)


@dataclass
class PruneConfig(Common):
    """`conf/prune.yaml`."""

    seed: int = MISSING
    model: ModelFile = field(default_factory=ModelFile)
    weights: Optional[str] = MISSING
    data: Optional[str] = MISSING
    img_size: Optional[int] = MISSING
    device: str = MISSING
    latency_runs: int = MISSING
    loader: Loader = field(default_factory=Loader)
    builtin: Builtin = field(default_factory=Builtin)
    eval: Eval = field(default_factory=Eval)
    prune: PruneOptions = field(default_factory=PruneOptions)


# ----------------------------------------------------------------------------- export


@dataclass
class ExportSpeed:
    """`export.speed`: time the written IRs and record the fastest precision (`yolo_slim.export.precision`)."""

    measure: bool = MISSING
    rounds: int = MISSING


@dataclass
class ExportOptions:
    """`conf/export/*.yaml`."""

    formats: List[str] = MISSING
    precision: str = MISSING
    batch: int = MISSING
    dynamic: List[str] = MISSING
    exporter: str = MISSING
    opset: int = MISSING
    nms: str = MISSING
    conf_thres: float = MISSING
    iou_thres: float = MISSING
    max_det: int = MISSING
    parity_tol: float = MISSING
    ir_parity_tol: float = MISSING
    calibration_images: int = MISSING
    evaluate: bool = MISSING
    eval_images: Optional[int] = MISSING
    speed: ExportSpeed = field(default_factory=ExportSpeed)


@dataclass
class ExportConfig(Common):
    """`conf/export.yaml`."""

    seed: int = MISSING
    model: ModelFile = field(default_factory=ModelFile)
    weights: Optional[str] = MISSING
    data: Optional[str] = MISSING
    img_size: Optional[int] = MISSING
    device: str = MISSING
    names: Optional[List[str]] = MISSING
    builtin: Builtin = field(default_factory=Builtin)
    eval: Eval = field(default_factory=Eval)
    export: ExportOptions = field(default_factory=ExportOptions)


# ----------------------------------------------------------------------------- detect


@dataclass
class DetectOutput:
    video: bool = MISSING
    video_suffix: str = MISSING
    frames: bool = MISSING
    jsonl: bool = MISSING


@dataclass
class DetectConfig(Common):
    """`conf/detect.yaml`."""

    weights: Optional[str] = MISSING
    source: Any = MISSING
    mode: str = MISSING
    device: str = MISSING
    hint: str = MISSING
    preprocess: str = MISSING
    nms: str = MISSING
    requests: Optional[int] = MISSING
    conf_thres: float = MISSING
    iou_thres: float = MISSING
    max_frames: Optional[int] = MISSING
    log_every: float = MISSING
    progress: bool = MISSING
    output: DetectOutput = field(default_factory=DetectOutput)


# ----------------------------------------------------------------------------- pipeline


@dataclass
class TrainStage:
    experiment: str = MISSING
    overrides: List[str] = MISSING


@dataclass
class BaselineStage(TrainStage):
    min_map: float = MISSING


@dataclass
class SparsityStage(TrainStage):
    keep_map: float = MISSING
    min_zeroed: float = MISSING


@dataclass
class SweepStage:
    """A prune sweep's acceptance rule (`yolo_slim.prune.accept.Acceptance`) and its jobs' overrides."""

    tolerance: float = MISSING
    keep_map: float = MISSING
    keep_recall: float = MISSING
    min_map: float = MISSING
    recalibrate_bn: int = MISSING
    recover_steps: int = MISSING
    overrides: List[str] = MISSING


@dataclass
class ChannelSweepStage(SweepStage):
    percents: List[float] = MISSING


@dataclass
class LayerSweepStage(SweepStage):
    shortcuts: List[int] = MISSING


@dataclass
class LatencySweepStage(SweepStage):
    budgets: List[float] = MISSING


@dataclass
class ExportStage:
    precisions: List[str] = MISSING
    overrides: List[str] = MISSING


@dataclass
class BenchmarkStage:
    runs: int = MISSING
    warmup: int = MISSING


@dataclass
class PipelineConfig(Common):
    """`conf/pipeline.yaml`."""

    seed: int = MISSING
    stages: List[str] = MISSING
    force: List[str] = MISSING
    data: Optional[str] = MISSING
    img_size: Optional[int] = MISSING
    device: str = MISSING
    deploy_device: str = MISSING
    train_overrides: List[str] = MISSING
    gate: bool = MISSING
    builtin: Builtin = field(default_factory=Builtin)
    eval: Eval = field(default_factory=Eval)
    baseline: BaselineStage = field(default_factory=BaselineStage)
    sparsity: SparsityStage = field(default_factory=SparsityStage)
    channel_sweep: ChannelSweepStage = field(default_factory=ChannelSweepStage)
    layer_sweep: LayerSweepStage = field(default_factory=LayerSweepStage)
    latency_sweep: LatencySweepStage = field(default_factory=LatencySweepStage)
    finetune: TrainStage = field(default_factory=TrainStage)
    export: ExportStage = field(default_factory=ExportStage)
    benchmark: BenchmarkStage = field(default_factory=BenchmarkStage)


SCHEMAS: dict[str, type] = {
    "train": TrainConfig,
    "val": ValConfig,
    "predict": PredictConfig,
    "prune": PruneConfig,
    "export": ExportConfig,
    "detect": DetectConfig,
    "pipeline": PipelineConfig,
}
"""App name -> the dataclass of its root config (the app's config file is `conf/<app>.yaml`)."""
