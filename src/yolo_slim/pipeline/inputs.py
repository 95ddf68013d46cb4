"""What decides a stage's result, recorded so that a rerun notices when it changed.

A stage's inputs are its task configs (resolved, with the run's own folders replaced
by placeholders such as ``<run>``, and without keys that only change how a run looks:
paths, progress bars, loggers, the resume checkpoint) and the content hashes of its
input files: the cfg and weights files it reads and the data set (its list and data
files, each image's size and each label file's content). `stage.json` keeps them; a
rerun compares, and `differences` names what changed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# keys of a task config that do not decide its result
IGNORED_KEYS = frozenset({
    "paths", "ckpt_path", "resume", "dry_run", "run_name", "task_name", "requires", "logger",
    "trainer.enable_progress_bar", "trainer.enable_model_summary", "callbacks.rich_progress_bar", "callbacks.progress_log",
})
# config keys whose value is a file the task reads
FILE_KEYS = ("model.cfg", "weights", "prune.plan")


class FileDigests:
    """sha256 of files, computed once per (path, size, mtime) in this process."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}

    def file(self, path: str | os.PathLike) -> str:
        p = Path(path)
        stat = p.stat()
        key = (str(p.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in self._cache:
            digest = hashlib.sha256()
            with p.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._cache[key] = digest.hexdigest()
        return self._cache[key]


def data_fingerprint(data: str | os.PathLike, digests: FileDigests) -> str:
    """One sha256 over a data set: its `.data`/list/names files, image names and sizes, label contents.

    Images are identified by path and size (hashing every image of a large set on each
    rerun would cost minutes); label files, which decide the targets, by content.

    Raises:
        DataError: the data set cannot be read.
    """
    from yolo_slim.data import YoloDataModule
    from yolo_slim.data.formats import label_path_for, resolve_image_list

    spec = YoloDataModule(data=str(data)).spec
    digest = hashlib.sha256()
    for name in spec.names:
        digest.update(f"name {name}\n".encode())
    for split, sources in (("train", spec.train), ("valid", spec.valid)):
        for source in sources:
            digest.update(f"{split} {source}\n".encode())
            if Path(source).is_file():
                digest.update(digests.file(source).encode())
            for image in resolve_image_list(source):
                size = image.stat().st_size if image.is_file() else -1
                label = label_path_for(image)
                text = digests.file(label) if label.is_file() else "none"
                digest.update(f"{image} {size} {text}\n".encode())
    return digest.hexdigest()


def _replace_prefixes(value: Any, replacements: list[tuple[str, str]]) -> Any:
    if isinstance(value, dict):
        return {k: _replace_prefixes(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_prefixes(v, replacements) for v in value]
    if isinstance(value, str):
        for prefix, placeholder in replacements:
            if value == prefix or value.startswith(prefix.rstrip("/") + "/"):
                return placeholder + value[len(prefix.rstrip("/")):]
    return value


def _drop(container: dict, dotted: str) -> None:
    head, _, rest = dotted.partition(".")
    if head in container:
        if not rest:
            del container[head]
        elif isinstance(container[head], dict):
            _drop(container[head], rest)


def normalised_config(cfg: DictConfig, roots: Mapping[str, str]) -> dict[str, Any]:
    """`cfg` resolved, without `IGNORED_KEYS`, with the `roots` folders as placeholders.

    Args:
        cfg: a validated task config.
        roots: folder -> placeholder, e.g. ``{"/x/outputs/pipeline/demo": "<run>"}``.
    """
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in IGNORED_KEYS:
        _drop(container, key)
    replacements = sorted(((str(k), v) for k, v in roots.items()), key=lambda kv: -len(kv[0]))
    return _replace_prefixes(container, replacements)


def input_files(configs: Iterable[DictConfig]) -> list[str]:
    """The existing files the configs' `FILE_KEYS` name, in order, once each."""
    seen: list[str] = []
    for cfg in configs:
        for key in FILE_KEYS:
            value = OmegaConf.select(cfg, key, default=None)
            if value and Path(str(value)).is_file() and str(value) not in seen:
                seen.append(str(value))
    return seen


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {k: v for key, sub in value.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    return {prefix[:-1]: value}


def _short(value: Any) -> str:
    text = "(none)" if value is _ABSENT else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_ABSENT = object()


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two recorded inputs, one phrase each (``trainer.max_epochs: 12 -> 20``).

    A stage with one job shows its keys plainly; with several, each key is prefixed
    with the job's name.
    """
    out: list[str] = []
    old_cfg, new_cfg = old.get("configs", {}), new.get("configs", {})
    single = len(old_cfg) == len(new_cfg) == 1 and set(old_cfg) == set(new_cfg)
    for job in sorted(set(old_cfg) | set(new_cfg)):
        if job not in new_cfg or job not in old_cfg:
            out.append(f"job {job} {'added' if job in new_cfg else 'removed'}")
            continue
        a, b = _flat(old_cfg[job]), _flat(new_cfg[job])
        for key in sorted(set(a) | set(b)):
            va, vb = a.get(key, _ABSENT), b.get(key, _ABSENT)
            if va != vb:
                out.append(f"{'' if single else job + ': '}{key}: {_short(va)} -> {_short(vb)}")
    for name, label in (("data", "the data set's files"),):
        if old.get(name) != new.get(name):
            out.append(f"{label} changed")
    old_files, new_files = old.get("files", {}), new.get("files", {})
    for path in sorted(set(old_files) | set(new_files)):
        if old_files.get(path) != new_files.get(path):
            out.append(f"{path}: {'content changed' if path in old_files and path in new_files else 'added' if path in new_files else 'removed'}")
    if old.get("settings") != new.get("settings"):
        a, b = _flat(old.get("settings") or {}), _flat(new.get("settings") or {})
        out += [f"{key}: {_short(a.get(key, _ABSENT))} -> {_short(b.get(key, _ABSENT))}" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
    return out


def stage_inputs(
    configs: Mapping[str, DictConfig],
    roots: Mapping[str, str],
    digests: FileDigests,
    data_digest: str,
    settings: Mapping[str, Any] | None = None,
    files: Iterable[str] = (),
) -> dict[str, Any]:
    """The inputs record of one stage.

    Args:
        configs: job name -> its validated task config.
        roots: folder -> placeholder (see `normalised_config`).
        digests: the file hash cache.
        data_digest: `data_fingerprint` of the pipeline's data set.
        settings: stage settings outside any task config (the benchmark's).
        files: more input files than the configs name (the benchmark's models).
    """
    replacements = sorted(((str(k), v) for k, v in roots.items()), key=lambda kv: -len(kv[0]))
    paths = [*input_files(configs.values()), *(f for f in files if Path(f).is_file())]
    return {
        "configs": {name: normalised_config(cfg, roots) for name, cfg in configs.items()},
        "data": data_digest,
        "files": {_replace_prefixes(p, replacements): digests.file(p) for p in dict.fromkeys(paths)},
        "settings": _replace_prefixes(dict(settings or {}), replacements),
    }
