"""Reading a training config for the plan: LLaMA-Factory YAML/JSON or HF TrainingArguments JSON."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ..config import parse_scheduler_kwargs
from ..errors import ConfigError
from ..guide import method_key
from ..untrusted import load_json, load_yaml, read_regular

__all__ = ["TrainingConfig", "config_from_mapping", "load_config", "parse_model_size"]

# HF TrainingArguments defaults for the keys the plan reads.
_HF_DEFAULTS: dict[str, Any] = {
    "learning_rate": 5e-5,
    "num_train_epochs": 3.0,
    "max_steps": -1,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "warmup_steps": 0.0,
    "warmup_ratio": 0.0,
    "lr_scheduler_type": "linear",
    "adam_beta2": 0.999,
    "dataloader_drop_last": False,
    "optim": "adamw_torch",
}
# Keys only LLaMA-Factory configs carry; any of them marks a file as a LLaMA-Factory config.
_LF_KEYS = frozenset(
    {"stage", "finetuning_type", "template", "dataset", "cutoff_len", "model_name_or_path"}
)


# --- Config --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingConfig:
    """The training settings the plan needs, with HF defaults filled in for absent keys."""

    path: str
    source_format: Literal["llamafactory", "training_args"]
    learning_rate: float
    num_train_epochs: float
    max_steps: int
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    warmup_steps: float
    warmup_ratio: float
    lr_scheduler_type: str
    lr_scheduler_kwargs: Mapping[str, Any]
    adam_beta2: float | None
    dataloader_drop_last: bool
    optim: str
    finetuning_type: str | None
    stage: str | None  # LLaMA-Factory's training stage (sft, dpo …); None for TrainingArguments
    quantization_bit: int | None
    max_samples: int | None
    val_size: float | None
    datasets: int
    model_name_or_path: str | None

    @property
    def method(self) -> str | None:
        """``lora``, ``qlora`` or ``full`` (the methods the guide covers), else None."""
        return method_key(self.finetuning_type, self.quantization_bit)


def load_config(path: str | Path) -> TrainingConfig:
    """Read a LLaMA-Factory YAML/JSON or an HF ``TrainingArguments`` JSON file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(
            f"'{p}' has extension '{p.suffix or '(none)'}', not a training config this tool reads",
            "Give a LLaMA-Factory .yaml/.yml file or a TrainingArguments .json file",
        )
    try:
        text = read_regular(p).decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"'{p}' does not exist", "Check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"'{p}' is a directory", "Give the config file itself") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read '{p}': {_one_line(err)}", "Check the file") from None
    try:
        data = load_json(text) if suffix == ".json" else load_yaml(text)
    except (yaml.YAMLError, ValueError) as err:
        kind = "JSON" if suffix == ".json" else "YAML"
        raise ConfigError(
            f"'{p}' is not valid {kind}: {_one_line(err)}", "Fix the syntax"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"'{p}' holds a {type(data).__name__}, not a mapping of training arguments",
            "Give a file of 'key: value' training arguments",
        )
    return _config_from_mapping(data, str(p))


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def config_from_mapping(data: Mapping[str, Any], name: str) -> TrainingConfig:
    """Read training arguments already in memory (``TrainingArguments.to_dict()``, a parsed
    LLaMA-Factory YAML); ``name`` stands for the file path in messages."""
    return _config_from_mapping(data, name)


def _config_from_mapping(data: Mapping[str, Any], path: str) -> TrainingConfig:
    is_lf = bool(_LF_KEYS & data.keys())
    if not is_lf and not _HF_DEFAULTS.keys() & data.keys():
        # Nothing the plan reads: every number would be a default, so the plan would describe
        # a config nobody wrote. Say what is missing instead.
        held = ", ".join(repr(str(k)) for k in list(data)[:5]) + (", …" if len(data) > 5 else "")
        raise ConfigError(
            f"'{path}' has none of the training arguments the plan reads "
            f"({', '.join(sorted(_HF_DEFAULTS))}); it holds {held or 'nothing'}",
            "Give a LLaMA-Factory YAML or a TrainingArguments JSON "
            "(TrainingArguments.to_json_string())",
        )

    def get(key: str) -> Any:
        value = data.get(key)
        return _HF_DEFAULTS.get(key) if value is None else value

    try:
        kwargs = parse_scheduler_kwargs(data.get("lr_scheduler_kwargs"))
    except ValueError as exc:
        raise ConfigError(str(exc), "Write it as a mapping of numbers and strings") from None

    finetuning = data.get("finetuning_type")
    if finetuning is None and is_lf:
        finetuning = "lora"  # LLaMA-Factory's default finetuning_type
    dataset = data.get("dataset")
    n_datasets = len([d for d in str(dataset).split(",") if d.strip()]) if dataset else 1
    quant = data.get("quantization_bit")
    max_samples = data.get("max_samples")
    val_size = data.get("val_size")
    beta2 = data.get("adam_beta2")
    optim = str(get("optim"))
    if beta2 is None and "adam" in optim.lower():
        beta2 = _HF_DEFAULTS["adam_beta2"]
    return TrainingConfig(
        path=path,
        source_format="llamafactory" if is_lf else "training_args",
        learning_rate=_num(get("learning_rate"), "learning_rate", positive=True),
        num_train_epochs=_num(get("num_train_epochs"), "num_train_epochs"),
        max_steps=_int(get("max_steps"), "max_steps"),
        per_device_train_batch_size=_int(
            get("per_device_train_batch_size"), "per_device_train_batch_size", minimum=1
        ),
        gradient_accumulation_steps=_int(
            get("gradient_accumulation_steps"), "gradient_accumulation_steps", minimum=1
        ),
        warmup_steps=_num(get("warmup_steps"), "warmup_steps"),
        warmup_ratio=_num(get("warmup_ratio"), "warmup_ratio"),
        lr_scheduler_type=_scheduler_name(get("lr_scheduler_type")),
        lr_scheduler_kwargs=dict(kwargs),
        adam_beta2=None if beta2 is None else _num(beta2, "adam_beta2"),
        dataloader_drop_last=_bool(get("dataloader_drop_last"), "dataloader_drop_last"),
        optim=optim,
        finetuning_type=None if finetuning is None else str(finetuning),
        stage=None if data.get("stage") is None else str(data["stage"]).strip(),
        quantization_bit=None if quant is None else _int(quant, "quantization_bit"),
        max_samples=None if max_samples is None else _int(max_samples, "max_samples", minimum=1),
        val_size=None if val_size is None else _num(val_size, "val_size"),
        datasets=max(n_datasets, 1),
        model_name_or_path=None
        if data.get("model_name_or_path") is None
        else str(data["model_name_or_path"]),
    )


def _scheduler_name(value: Any) -> str:
    # TrainingArguments JSON may hold the enum's repr ("SchedulerType.COSINE") from older versions.
    name = str(value).strip()
    if name.startswith("SchedulerType."):
        name = name.split(".", 1)[1].lower()
    return name


def _float(value: Any, key: str, kind: str) -> float:
    """``float(value)``, or a ConfigError saying ``key`` must be ``kind`` ("a number" …)."""
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise ConfigError(f"{key} is far too large", f"Set {key} to {kind}") from None
    except (TypeError, ValueError):
        raise ConfigError(f"{key} is {value!r}, not {kind}", f"Set {key} to {kind}") from None


def _num(value: Any, key: str, *, positive: bool = False) -> float:
    # PyYAML reads "5e-5" (no dot) as a string, as YAML 1.1 requires; the Trainer accepts it.
    number = _float(value, key, "a number")
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise ConfigError(f"{key} is {value!r}", f"Set {key} to a finite number >= 0")
    if positive and number == 0:
        raise ConfigError(f"{key} is 0", f"Set {key} to a positive number")
    return number


def _int(value: Any, key: str, *, minimum: int | None = None) -> int:
    number = _float(value, key, "an integer")
    if isinstance(value, bool) or not number.is_integer():
        raise ConfigError(f"{key} is {value!r}, not an integer", f"Set {key} to an integer")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{key} is {value!r}", f"Set {key} to an integer >= {minimum}")
    return int(number)


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"{key} is {value!r}, not true/false", f"Set {key} to true or false")


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bBmMtT])\s*$")


def parse_model_size(text: str) -> float:
    """Parse ``7B``, ``0.5B``, ``70b``, ``350M`` into billions of parameters."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ConfigError(
            f"model size '{text}' is not a size like 7B, 0.5B, 70b or 350M",
            "Give --model-size as a number followed by B or M",
        )
    number, unit = float(match.group(1)), match.group(2).lower()
    size = number * {"b": 1.0, "m": 1e-3, "t": 1e3}[unit]
    if size <= 0:
        raise ConfigError(f"model size '{text}' is not positive", "Give a positive --model-size")
    return size
