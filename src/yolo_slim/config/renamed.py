"""Old spellings of the config contract, each answered with the new one.

A script or shell history from before the one-spelling contract (README, "Changes for
existing run folders and scripts") gets one line saying what to write instead, not
Hydra's "Could not override" block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from yolo_slim.errors import ConfigError


@dataclass(frozen=True)
class Renamed:
    """An old key (or `key=value` group choice) and what replaces it.

    Attributes:
        old: the old key; ``data.builtin`` also matches ``data.builtin.n_train``.
        new: what to write instead (``builtin`` gives ``builtin.n_train``).
        apps: the apps it applies to (empty: all).
        value: only this value of `old` (a group choice such as ``trainer=gpu``).
        exact: match `old` itself only, not the keys below it.
        gone: the value does not carry over (another unit): any value is answered
            with "is gone: write NEW".
    """

    old: str
    new: str
    apps: tuple[str, ...] = ()
    value: str | None = None
    exact: bool = False
    gone: bool = False


RENAMED: tuple[Renamed, ...] = (
    Renamed("data.data", "data"),
    Renamed("data.img_size", "img_size"),
    Renamed("data.builtin", "builtin"),
    Renamed("data.cache_dir", "paths.data_dir"),
    *(Renamed(f"data.{key}", f"loader.{key}") for key in ("batch_size", "num_workers", "cache", "strict", "augment", "val_subset")),
    Renamed("data", "data=PATH (a .data file or dataset folder)", value="custom"),
    Renamed("dataset", "data"),
    Renamed("export.img_size", "img_size"),
    Renamed("export.out_dir", "paths.output_dir"),
    Renamed("export.data_root", "paths.data_dir"),
    Renamed("export.builtin", "builtin"),
    Renamed("model.img_size", "img_size", apps=("train",)),
    Renamed("model.weights", "weights", apps=("train",)),
    Renamed("model.val", "eval", apps=("train",)),
    Renamed("trainer", "device=gpu", apps=("train",), value="gpu"),
    Renamed("trainer", "device=cpu", apps=("train",), value="cpu"),
    Renamed("trainer.accelerator", "device"),
    Renamed("model", "weights", apps=("detect",)),
    Renamed("model", "model.cfg", apps=("prune", "export"), exact=True),
    Renamed("ir", "weights", apps=("detect",)),
    Renamed("output.dir", "paths.output_dir", apps=("detect",)),
    Renamed("benchmark.score_threshold", "eval.score_threshold", apps=("pipeline",)),
    Renamed("optim.scheduler.warmup_epochs", "budget.warmup_steps=N (the warm-up in optimizer steps; "
            "the run prints how many steps an epoch has)", apps=("train",), gone=True),
)


def _new_key(rule: Renamed, key: str) -> str:
    return rule.new + key[len(rule.old):] if "=" not in rule.new else rule.new


def check_renamed(app: str, overrides: Sequence[tuple[str, str]]) -> None:
    """Refuse the first override that uses an old spelling.

    Args:
        app: the app the overrides are for.
        overrides: ``(key, value)`` of each command-line override (prefixes such as
            ``+`` stripped).

    Raises:
        ConfigError: e.g. ``data.data=my.data: the dataset is data=my.data now (README:
            Changes for existing run folders and scripts)``; when the new key is also
            given with another value, both values are named.
    """
    given = dict(overrides)
    for key, value in overrides:
        for rule in RENAMED:
            if rule.apps and app not in rule.apps:
                continue
            if rule.value is not None or rule.gone:
                if key != rule.old or (rule.value is not None and value != rule.value):
                    continue
                raise ConfigError(f"{key}={value} is gone: write {rule.new} (README: Changes for existing run folders and scripts)")
            if key != rule.old and (rule.exact or not key.startswith(rule.old + ".")):
                continue
            new = _new_key(rule, key)
            also = given.get(new)
            clash = f"; you also gave {new}={also}, which disagrees" if also is not None and also != value else ""
            raise ConfigError(f"{key}={value}: this is {new}={value} now{clash} (README: Changes for existing run folders and scripts)")
