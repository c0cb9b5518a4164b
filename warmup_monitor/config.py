"""Training configuration found next to the logs, under canonical keys.

The config is *evidence*, never a requirement: a run is diagnosed from its curves alone, and the
config only sharpens the advice (the planned total steps, the configured warmup, …). So every
problem reading it — a missing, empty or garbled file, a value of the wrong type — becomes a
warning and the key is left out, never an error.

Canonical keys (HF ``TrainingArguments`` / LLaMA-Factory spelling)::

    learning_rate  warmup_steps  warmup_ratio  lr_scheduler_type  max_steps  num_train_epochs
    per_device_train_batch_size  gradient_accumulation_steps  max_grad_norm  finetuning_type
    model_name_or_path  logging_steps  adam_beta2  quantization_bit  max_samples
    train_batch_size  global_step  seed  lr_scheduler_kwargs

``lr_scheduler_kwargs`` is the one mapping among them (the schedule's own arguments, such as
warmup-stable-decay's ``num_decay_steps`` or a cosine's ``min_lr_rate``): a dict of numbers,
strings and booleans, also read from the JSON string a command line leaves there.

Files read by :func:`read_config_near`, lowest precedence first (a later file overrides the
keys it sets):

0. before any file: the ``TrainingArguments`` an HF Trainer wrote as text at the start of the
   run folder's own TensorBoard event files (``args/text_summary``; never a parent's), for the
   keys no file gives
1. ``hparams.yaml`` (Lightning)
2. ``files/config.yaml`` (SwanLab: ``{key: {value: ...}}``)
3. ``args.json``
4. ``training_args.json``
5. other ``*.yaml`` files holding training keys (LLaMA-Factory recipes), by name
6. ``training_args.yaml`` (what LLaMA-Factory saves in its output_dir)

Folders are read from the farthest to the run folder itself, so the run folder wins over its
parent: the parent and, when the parent is a log container such as ``runs/`` (an HF output_dir
keeps TensorBoard runs in ``<output_dir>/runs/<name>/``), the grandparent.

One key comes from no file's contents: ``loss_window`` (training steps one logged training loss
stands for) is 1 when the run folder holds Lightning's ``hparams.yaml``, since Lightning logs the
loss of the logged step itself.

Last come the top levels of ``trainer_state.json`` files (``max_steps``, ``num_train_epochs``,
``logging_steps``, ``train_batch_size``, ``global_step``): they record what ran, where argument
files record what was asked — with ``max_steps`` set, HF's arguments still say
``num_train_epochs: 3.0`` while the Trainer ran the epochs that ``max_steps`` allowed.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .untrusted import MAX_DEPTH, load_json, load_yaml, read_regular

__all__ = ["CANONICAL_KEYS", "canonical_config", "parse_scheduler_kwargs", "read_config_near"]

_FLOAT_KEYS = ("learning_rate", "warmup_ratio", "num_train_epochs", "max_grad_norm", "adam_beta2")
_INT_KEYS = (
    "warmup_steps",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "logging_steps",
    "quantization_bit",
    "max_samples",
    "train_batch_size",
    "global_step",
    "seed",
)
_STR_KEYS = ("lr_scheduler_type", "finetuning_type", "model_name_or_path", "optim")

CANONICAL_KEYS: tuple[str, ...] = (
    "learning_rate",
    "warmup_steps",
    "warmup_ratio",
    "lr_scheduler_type",
    "max_steps",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_grad_norm",
    "finetuning_type",
    "model_name_or_path",
    "logging_steps",
    "adam_beta2",
    "optim",
    "quantization_bit",
    "max_samples",
    "train_batch_size",
    "global_step",
    "seed",
    "lr_scheduler_kwargs",
)
_MAPPING_KEYS = ("lr_scheduler_kwargs",)

# Other spellings seen in Lightning hparams, custom scripts and older tools; used only when the
# canonical spelling is absent from the same file.
_ALIASES: dict[str, str] = {
    "lr": "learning_rate",
    "base_lr": "learning_rate",
    "max_lr": "learning_rate",
    "num_warmup_steps": "warmup_steps",
    "warmup_iters": "warmup_steps",
    "lr_warmup_steps": "warmup_steps",
    "scheduler": "lr_scheduler_type",
    "lr_scheduler": "lr_scheduler_type",
    "total_steps": "max_steps",
    "num_training_steps": "max_steps",
    "max_iters": "max_steps",
    "epochs": "num_train_epochs",
    "max_epochs": "num_train_epochs",
    "num_epochs": "num_train_epochs",
    "batch_size": "per_device_train_batch_size",
    "train_batch_size_per_device": "per_device_train_batch_size",
    "accumulate_grad_batches": "gradient_accumulation_steps",
    "grad_accum_steps": "gradient_accumulation_steps",
    "gradient_clip_val": "max_grad_norm",
    "grad_clip": "max_grad_norm",
    "clip_grad_norm": "max_grad_norm",
    "model_name": "model_name_or_path",
    "base_model": "model_name_or_path",
    "model_id": "model_name_or_path",
    "optimizer": "optim",
}

# Training keys that make an arbitrary *.yaml a training recipe rather than some other config.
_RECIPE_MARKERS = frozenset(
    ("learning_rate", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "finetuning_type")
)
# Folders that hold runs rather than being one: look one level further up for the config.
_LOG_CONTAINERS = frozenset(("runs", "swanlog", "lightning_logs", "logs", "tb_logs", "tensorboard"))
# Files only an HF/LLaMA-Factory output_dir holds (with checkpoint-* folders).
_OUTPUT_DIR_MARKERS = frozenset(
    ("trainer_state.json", "trainer_log.jsonl", "training_args.bin", "all_results.json")
)
_CHECKPOINT = re.compile(r"^checkpoint-\d+$")
_MAX_CONFIG_BYTES = 2_000_000  # a config file is small; anything bigger is not one
_MAX_RECIPES = 20  # a folder of many YAML files is a recipe collection, not one run's config
_MAX_EVENT_FILES = 8  # event files of one run read for the Trainer's arguments


def _unwrap(value: Any) -> Any:
    # SwanLab and W&B store each key as {"value": v, "desc": ..., "sort": ...}.
    if isinstance(value, Mapping) and "value" in value:
        return value["value"]
    return value


def _flatten(raw: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """Top-level keys, then leaf keys of nested sections (top level wins). A mapping-valued
    canonical key (``lr_scheduler_kwargs``) is a leaf too."""
    flat: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for key, value in raw.items():
        value = _unwrap(value)
        if isinstance(value, Mapping) and str(key) not in _MAPPING_KEYS:
            if depth >= MAX_DEPTH:
                continue  # no real config nests this deep
            for sub_key, sub_value in _flatten(value, depth + 1).items():
                nested.setdefault(sub_key, sub_value)
        else:
            flat[str(key)] = value
    for key, value in nested.items():
        flat.setdefault(key, value)
    return flat


def parse_scheduler_kwargs(value: Any) -> dict[str, Any]:
    """``lr_scheduler_kwargs`` as a dict: a mapping, or the JSON object a command line gives.

    ``None`` and an empty string are ``{}``. Raises ``ValueError`` (naming the problem) for
    anything else, and for a value inside that is not a number, string or boolean: the
    Trainer passes these to the scheduler function as keyword arguments.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        try:
            value = load_json(text)
        except ValueError:
            raise ValueError(f"lr_scheduler_kwargs {_shown(text)} is not a JSON object") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"lr_scheduler_kwargs is {_shown(value)}, not a mapping")
    out: dict[str, Any] = {}
    for key, item in value.items():
        ok = isinstance(item, (str, bool)) or (
            isinstance(item, (int, float)) and _to_float(item) is not None
        )
        if not ok:
            raise ValueError(
                f"lr_scheduler_kwargs {_shown(str(key))}: {_shown(item)} is not a number or string"
            )
        out[str(key)] = item
    return out


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            out = float(value)
        except OverflowError:  # an integer of hundreds of digits
            return None
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return out if math.isfinite(out) else None


def _to_int(value: Any) -> int | None:
    out = _to_float(value)
    if out is None or out != int(out):
        return None
    return int(out)


def _scheduler_name(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, Mapping, list)):
        return None
    text = str(value).strip()
    # An enum rendered by str(): "SchedulerType.COSINE" -> "cosine".
    if text.startswith("SchedulerType."):
        text = text.split(".", 1)[1].lower()
    return text or None


def canonical_config(raw: Mapping[str, Any], warnings: list[str] | None = None) -> dict[str, Any]:
    """Map a raw config (any of the layouts above, possibly nested) to canonical keys.

    Values are coerced ("1e-4" -> 1e-4, "500" -> 500). Unset sentinels are dropped: HF's
    ``max_steps: -1``, ``num_train_epochs`` of ``sys.maxsize`` (set when ``max_steps`` rules).
    A ``warmup_steps`` below 1 is a ratio (transformers 5 accepts a float there) and becomes
    ``warmup_ratio``. Of ``warmup_steps`` and ``warmup_ratio`` set together, the one HF uses is
    kept: a positive ``warmup_steps`` overrides the ratio, ``0`` defers to it. Values that cannot
    be coerced are skipped with a message appended to ``warnings``.
    """
    flat = _flatten(raw)
    picked: dict[str, Any] = {}
    for key in CANONICAL_KEYS:
        if key in flat:
            picked[key] = flat[key]
    for alias, key in _ALIASES.items():
        if key not in picked and alias in flat:
            picked[key] = flat[alias]
    out: dict[str, Any] = {}
    for key, value in picked.items():
        if value is None or value == "":
            continue
        coerced: Any
        if key in _MAPPING_KEYS:
            try:
                parsed = parse_scheduler_kwargs(value)
            except ValueError as exc:
                if warnings is not None:
                    warnings.append(f"config value {exc}; ignored")
                continue
            if parsed:
                out[key] = parsed
            continue
        if key == "warmup_steps":
            number = _to_float(value)
            if number is not None and 0 < number < 1:
                out.setdefault("warmup_ratio", number)
                continue
            coerced = _to_int(value)
        elif key in _FLOAT_KEYS:
            coerced = _to_float(value)
        elif key in _INT_KEYS:
            coerced = _to_int(value)
        elif key == "lr_scheduler_type":
            coerced = _scheduler_name(value)
        else:
            coerced = None if isinstance(value, (Mapping, list)) else str(value)
        if coerced is not None and not _in_range(key, coerced):
            if key == "max_grad_norm" and coerced == 0:
                continue  # 0 turns clipping off
            if warnings is not None:
                warnings.append(
                    f"config value {key}={_shown(value)} is outside its valid range "
                    f"({_RANGES[key][2]}); ignored"
                )
            continue
        if coerced is None:
            if warnings is not None:
                warnings.append(f"config value {key}={_shown(value)} is not usable; ignored")
            continue
        out[key] = coerced
    if out.get("max_steps", 1) <= 0:
        del out["max_steps"]  # -1 means "derived from num_train_epochs"
    if out.get("num_train_epochs", 0) > 1e9:
        del out["num_train_epochs"]
    _resolve_warmup(out)
    return out


# Valid ranges (low, high, as said in a warning); max_steps <= 0 is HF's "unset" and dropped.
_RANGES: dict[str, tuple[float, float, str]] = {
    "learning_rate": (1e-300, math.inf, "> 0"),
    "warmup_steps": (0, math.inf, ">= 0"),
    "warmup_ratio": (0, 1, "0 to 1"),
    "max_steps": (-math.inf, math.inf, "any"),
    "num_train_epochs": (1e-300, math.inf, "> 0"),
    "per_device_train_batch_size": (1, math.inf, ">= 1"),
    "gradient_accumulation_steps": (1, math.inf, ">= 1"),
    "max_grad_norm": (1e-300, math.inf, "> 0"),
    "logging_steps": (1, math.inf, ">= 1"),
    "adam_beta2": (0, 1 - 1e-16, "0 to 1, below 1"),
    "quantization_bit": (1, 64, "1 to 64"),
    "max_samples": (1, math.inf, ">= 1"),
    "train_batch_size": (1, math.inf, ">= 1"),
    "global_step": (0, math.inf, ">= 0"),
}


def _in_range(key: str, value: Any) -> bool:
    bounds = _RANGES.get(key)
    return bounds is None or bounds[0] <= value <= bounds[1]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _resolve_warmup(config: dict[str, Any]) -> None:
    # HF semantics: warmup_steps > 0 overrides warmup_ratio, and 0 (the default) defers to it.
    if "warmup_ratio" in config and "warmup_steps" in config:
        if config["warmup_ratio"] == 0:
            del config["warmup_ratio"]
        elif config["warmup_steps"] == 0:
            del config["warmup_steps"]


def _load_file(path: Path, warnings: list[str]) -> Mapping[str, Any] | None:
    # trainer_state.json is a log that grows with the run (4 MB at 30k logged steps); only its
    # top level is config, so the cap for config files does not apply to it.
    limit = None if path.name == "trainer_state.json" else _MAX_CONFIG_BYTES
    try:
        raw = read_regular(path, None if limit is None else limit + 1)
    except OSError as err:
        warnings.append(f"config file {path.name} is unreadable ({err.strerror}); ignored")
        return None
    if limit is not None and len(raw) > limit:
        warnings.append(f"config file {path.name} is larger than 2 MB; ignored")
        return None
    text = raw.decode("utf-8-sig", errors="replace")
    if not text.strip():
        # SwanLab rewrites config.yaml in place: an empty read is a write in progress.
        warnings.append(f"config file {path.name} is empty; ignored")
        return None
    try:
        data = load_json(text) if path.suffix == ".json" else load_yaml(text)
    except (ValueError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        warnings.append(f"config file {path.name} cannot be parsed ({first}); ignored")
        return None
    if not isinstance(data, Mapping):
        warnings.append(f"config file {path.name} does not hold a mapping; ignored")
        return None
    if path.name == "trainer_state.json":
        # Only the top level: log_history is the run, not the config.
        return {k: v for k, v in data.items() if k != "log_history"}
    return data


def _event_file_arguments(path: Path, warnings: list[str]) -> Mapping[str, Any] | None:
    """The HF ``TrainingArguments`` text at the start of an event file, if it holds one."""
    from .readers.tensorboard_args import trainer_arguments

    text = trainer_arguments(path)
    if text is None:
        return None  # the usual case: only the HF Trainer writes them
    try:
        data = load_json(text)
    except ValueError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        warnings.append(
            f"the training arguments in {path.name} cannot be parsed ({first}); ignored"
        )
        return None
    if not isinstance(data, Mapping):
        warnings.append(f"the training arguments in {path.name} are not a mapping; ignored")
        return None
    return data


class _Listing(dict[str, bool]):
    """Every entry of a folder: name -> regular file (symlinks followed)."""

    _output_dir: bool | None = None

    @property
    def output_dir(self) -> bool:
        """The folder is one the HF Trainer or LLaMA-Factory wrote as its ``output_dir``.

        Kept with the listing: the runs of a sweep all ask it of their shared parent.
        """
        if self._output_dir is None:
            self._output_dir = bool(_OUTPUT_DIR_MARKERS & self.keys()) or any(
                _CHECKPOINT.match(n) for n in self
            )
        return self._output_dir


# Folder listings by folder, with the folder's mtime: the runs of a sweep share one parent, and
# listing it again for each run made reading N runs cost N^2.
_LISTINGS: dict[Path, tuple[int, _Listing]] = {}
_MAX_LISTINGS = 256
# A folder changed this recently may still change within its mtime's resolution: not cached.
_SETTLED_NS = 2_000_000_000


def _listing(folder: Path) -> _Listing:
    """Every entry of ``folder``: name -> regular file (symlinks followed); raises ``OSError``."""
    mtime = os.stat(folder).st_mtime_ns
    hit = _LISTINGS.get(folder)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    with os.scandir(folder) as entries:
        names = _Listing((e.name, _is_file(e)) for e in entries)
    if time.time_ns() - mtime > _SETTLED_NS:
        if len(_LISTINGS) >= _MAX_LISTINGS:
            _LISTINGS.clear()
        _LISTINGS[folder] = (mtime, names)
    return names


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _event_files(folder: Path) -> list[Path]:
    """The run folder's event files, oldest first (a resumed run's later arguments win)."""
    from .readers.tensorboard import oldest_first

    try:
        listing = _listing(folder)
    except OSError:
        return []
    events = oldest_first(n for n, is_file in listing.items() if is_file)
    return [folder / n for n in events[:_MAX_EVENT_FILES]]


def _files_in(folder: Path) -> list[Path]:
    """Config files of one folder, lowest precedence first."""
    try:
        listing = _listing(folder)
    except OSError:
        return []
    names = {name: folder / name for name, is_file in listing.items() if is_file}
    files = [names["hparams.yaml"]] if "hparams.yaml" in names else []
    if "files" in listing:
        swanlab = folder / "files" / "config.yaml"
        if swanlab.is_file():
            files.append(swanlab)
    files += [names[n] for n in ("args.json", "training_args.json") if n in names]
    recipes = sorted(
        p
        for n, p in names.items()
        if n.endswith((".yaml", ".yml"))
        and not n.startswith(".")
        and n not in ("hparams.yaml", "training_args.yaml")
    )
    files += recipes[:_MAX_RECIPES]
    if "training_args.yaml" in names:
        files.append(names["training_args.yaml"])
    return files


def _has_file(folder: Path, name: str) -> bool:
    try:
        return _listing(folder).get(name, False)
    except OSError:
        return False


def _is_output_dir(folder: Path) -> bool:
    """A folder the HF Trainer or LLaMA-Factory wrote as its ``output_dir``."""
    try:
        return _listing(folder).output_dir
    except OSError:
        return False


def _folders_near(path: Path) -> list[Path]:
    """The folders whose config describes the run at ``path``, farthest first.

    The run folder itself, and folders above it only in an HF/LLaMA-Factory ``output_dir``
    layout: a log folder in ``<output_dir>/runs/`` (``swanlog/`` …) or a ``checkpoint-*`` folder
    gets the output_dir's config, and so does a run folder right inside an output_dir. A config
    file in any other parent (a folder of many unrelated runs) is not applied to them.
    """
    here = path if path.is_dir() else path.parent
    folders = [here]
    parent = here.parent
    if parent == here:
        return folders
    if parent.name in _LOG_CONTAINERS and parent.parent != parent:
        folders += [parent, parent.parent]
    elif here.name in _LOG_CONTAINERS or _CHECKPOINT.match(here.name) or _is_output_dir(parent):
        # ``<output_dir>/runs/`` holding the event files itself (SummaryWriter("out/runs")).
        folders.append(parent)
    return folders[::-1]


def read_config_near(
    path: Path, warnings: list[str] | None = None, notes: list[str] | None = None
) -> dict[str, Any]:
    """Canonical config from the files next to the run at ``path`` (a file or a folder).

    See the module docstring for the files and their precedence. Problems are appended to
    ``warnings``; which file supplied which keys is appended to ``notes``. This function never
    raises for a bad or missing config.
    """
    problems: list[str] = []
    merged: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    folders = _folders_near(Path(path))
    states = [f / "trainer_state.json" for f in folders if _has_file(f, "trainer_state.json")]
    # The arguments in the run's event files give only the keys no file gives: they are what a
    # run shared as its event files alone still carries.
    events = _event_files(folders[-1])
    files = [file for folder in folders for file in _files_in(folder)] + states
    fallback: dict[str, Any] = {}
    lightning: Path | None = None  # the run folder's own hparams.yaml, when it holds a mapping
    for file in events:
        data = _event_file_arguments(file, problems)
        if data is not None:
            found = canonical_config(data, problems)
            fallback.update(found)
            origin.update(dict.fromkeys(found, file))
    for file in files:
        file_notes: list[str] = []
        data = _load_file(file, file_notes)
        if data is None:
            problems += file_notes
            continue
        if file.name == "hparams.yaml" and file.parent == folders[-1]:
            lightning = file
        is_recipe = file.suffix in (".yaml", ".yml") and file.name not in (
            "hparams.yaml",
            "training_args.yaml",
            "config.yaml",
        )
        if is_recipe and not _RECIPE_MARKERS & set(_flatten(data)):
            continue  # some other YAML (a dataset card, a CI file …)
        found = canonical_config(data, problems)
        merged.update(found)
        origin.update(dict.fromkeys(found, file))
    merged.update((key, value) for key, value in fallback.items() if key not in merged)
    if lightning is not None:
        # Lightning writes hparams.yaml beside its logs, whichever logger it uses, and its
        # ``self.log`` logs the loss of the logged step itself, not a window mean.
        merged["loss_window"] = 1
        origin["loss_window"] = lightning
    _resolve_warmup(merged)
    if warnings is not None:
        warnings.extend(n for n in problems if n not in warnings)
    if notes is not None and merged:
        here = folders[-1]
        by_file: dict[Path, list[str]] = {}
        for key in merged:
            by_file.setdefault(origin[key], []).append(key)
        parts = [
            f"{os.path.relpath(file, here)} ({', '.join(keys)})" for file, keys in by_file.items()
        ]
        notes.append("config read from " + "; ".join(parts))
    return merged
