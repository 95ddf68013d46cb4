"""`check_command(app, argv)`: compose and validate a command line before Hydra runs it.

The entry scripts call this first, so that every misuse is one line and exit status 2
before Hydra makes a run dir or anything is read: an old spelling
(`yolo_slim.config.renamed`), an override Hydra cannot parse, a typo in a key, a
missing config group option, a wrong type, a missing required value, a device that is
not there. A multirun (``-m``) is checked once per swept value. With ``dry_run=true``
that is all the command does; the documentation tests use the same function on
every example in README.md and docs/.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from yolo_slim.config.messages import hydra_error, one_line
from yolo_slim.config.renamed import check_renamed
from yolo_slim.config.validate import schema_of, validate_config
from yolo_slim.errors import ConfigError

OVERRIDE_LISTS_HINT = (
    "quote each override inside the list, e.g. "
    "'train_overrides=[\"trainer=ddp\",\"trainer.devices=4\"]' (README: The whole process in one command)"
)


@dataclass(frozen=True)
class CheckedCommand:
    """What `check_command` found.

    Attributes:
        cfg: the validated config of the command (of its first job under ``-m``).
        args: Hydra's parsed command-line flags (``multirun``, ``cfg``, ...).
        checked: whether the config was composed and validated here (False for
            ``--help``-like flags and a ``--config-dir`` of the user's, which Hydra handles).
    """

    cfg: DictConfig | None
    args: argparse.Namespace
    checked: bool

    @property
    def dry_run(self) -> bool:
        return bool(self.cfg is not None and self.cfg.get("dry_run"))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Hydra's own command-line parse of `argv` (flags and overrides)."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse printed its usage line already
        raise ConfigError("cannot parse the command line (see the usage line above)") from exc


def _parse_overrides(overrides: Sequence[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.extend(parser.parse_overrides([text]))
        except OverrideParseException as exc:
            key = text.split("=", 1)[0].lstrip("+~")
            hint = OVERRIDE_LISTS_HINT if key.endswith("overrides") else "see https://hydra.cc/docs/advanced/override_grammar/basic/"
            raise ConfigError(f"cannot parse {text!r}: {one_line(str(exc).splitlines()[0])}; {hint}") from None
    return parsed


def _variants(parsed: list) -> list[list[str]]:
    """One override list per swept value (the other sweeps at their first value).

    Returns no lists when a sweep cannot be enumerated without Hydra's launcher (a
    `glob()` over config groups, an `interval()` for an optimizing sweeper): each job
    is then validated when it starts.
    """
    from hydra.errors import HydraException

    values: dict[int, list[str]] = {}
    for i, o in enumerate(parsed):
        if o.is_sweep_override():
            try:
                values[i] = [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
            except HydraException:
                return []
    first = [values[i][0] if i in values else o.input_line for i, o in enumerate(parsed)]
    if not values:
        return [first]
    variants = []
    for i, lines in values.items():
        for line in lines:
            variant = list(first)
            variant[i] = line
            variants.append(variant)
    return variants


def _check_experiment_file(app: str, parsed: list, conf_dir: Path) -> None:
    """Refuse ``experiment=NAME`` made for another app before composing (its defaults may not fit this app)."""
    from omegaconf import OmegaConf

    from yolo_slim.config.validate import check_experiment_app

    for override in parsed:
        if override.key_or_group == "experiment" and not override.is_sweep_override():
            path = conf_dir / "experiment" / f"{override.value()}.yaml"
            if path.is_file():
                check_experiment_app(OmegaConf.load(path), app)


def compose_checked(app: str, overrides: Sequence[str], conf_dir: Path, *, required: bool = True, config_name: str | None = None) -> DictConfig:
    """Compose `conf_dir/<app>.yaml` with `overrides` and validate it.

    Raises:
        ConfigError: any composition or validation problem, as one line.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3", job_name=app):
            cfg = compose(config_name=config_name or app, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(hydra_error(exc, schema_of(app))) from None
    return validate_config(cfg, app, required=required)


def check_command(app: str, argv: Sequence[str], conf_dir: Path) -> CheckedCommand:
    """Check the command line `argv` of `app` as `python <app>.py ARGV` would run it.

    Args:
        app: one of `yolo_slim.config.APPS`.
        argv: the arguments after the script name.
        conf_dir: the `conf/` folder of the checkout.

    Returns:
        The checked command; its `cfg` is None when Hydra handles the flags alone.

    Raises:
        ConfigError: the first problem, as one line.
    """
    args = parse_args(argv)
    if args.help or args.hydra_help or args.info or args.shell_completion or args.experimental_rerun or args.config_path or args.config_dir:
        return CheckedCommand(None, args, False)
    parsed = _parse_overrides(args.overrides)
    check_renamed(app, [(o.key_or_group, o.input_line.split("=", 1)[-1]) for o in parsed if not o.is_delete()])
    _check_experiment_file(app, parsed, conf_dir)
    required = args.cfg is None  # `--cfg job` shows a config with its required values still null
    first = None
    for variant in _variants(parsed) if args.multirun else [[o.input_line for o in parsed]]:
        cfg = compose_checked(app, variant, conf_dir, required=required, config_name=args.config_name)
        first = cfg if first is None else first
    return CheckedCommand(first, args, first is not None)


def compose_run(app: str, overrides: Sequence[str], conf_dir: Path, project_root: Path) -> DictConfig:
    """The validated config of one run of `app`, as ``yolo-slim APP OVERRIDES`` would run it, without Hydra running it.

    The overrides get the same checks as a command line (old spellings, an experiment
    for another app, the schema, required values); `paths.root_dir` is `project_root`,
    `paths.conf_dir` is `conf_dir`, and `paths.output_dir` the run folder Hydra would
    make (``conf/hydra/default.yaml``) unless the overrides set it.

    Raises:
        ConfigError: any problem, as one line (a sweep ``a=1,2`` included: compose one run at a time).
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    parsed = _parse_overrides(overrides)
    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    if sweeps:
        raise ConfigError(f"{sweeps[0]}: a sweep composes several runs; compose each value on its own")
    check_renamed(app, [(o.key_or_group, o.input_line.split("=", 1)[-1]) for o in parsed if not o.is_delete()])
    _check_experiment_file(app, parsed, conf_dir)
    located = [f"paths.root_dir={Path(project_root).resolve()}", f"paths.conf_dir={Path(conf_dir).resolve()}", *overrides]
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3", job_name=app):
            cfg = compose(config_name=app, overrides=located, return_hydra_config=True)
        run_dir = str(OmegaConf.select(cfg, "hydra.run.dir"))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(hydra_error(exc, schema_of(app))) from None
    with open_dict(cfg):
        del cfg["hydra"]
    if not any(o.key_or_group == "paths.output_dir" for o in parsed):
        cfg.paths.output_dir = run_dir
    return validate_config(cfg, app)
