"""Regenerate the sample runs in this folder by training tiny causal LMs on the CPU.

Every scenario is a real run of the Hugging Face ``Trainer`` on a randomly initialised, two-layer
language model over characters of text that ships with Python; it logs to TensorBoard and to
SwanLab (offline), and writes ``trainer_state.json``, ``trainer_log.jsonl`` (LLaMA-Factory's
format) and ``training_args.yaml`` (LLaMA-Factory's keys). Nothing is downloaded.

    python sample_logs/generate.py                 # all scenarios, then MANIFEST.json
    python sample_logs/generate.py --only healthy  # one scenario (repeatable), manifest updated
    python sample_logs/generate.py --list          # names and labels
"""

from __future__ import annotations

import os

# Before torch/transformers are imported: no hub access, one thread, SwanLab without network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["SWANLAB_MODE"] = "offline"
# Stray resume settings from the shell would make SwanLab attach to some other run.
os.environ.pop("SWANLAB_RUN_ID", None)
os.environ.pop("SWANLAB_RESUME", None)

import argparse
import dataclasses
import hashlib
import json
import math
import platform
import re
import shutil
import string
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

__all__ = ["LABELS", "SCENARIOS", "Scenario", "main"]

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "MANIFEST.json"
SWANLAB_PROJECT = "warmup-monitor-samples"
SEQ_LEN = 64
VOCAB = string.printable  # 100 fixed characters, so the vocabulary never depends on the text
# Source files of the standard library used as training text (pure-Python modules present in
# every CPython 3.10+ install). Their exact text varies across Python versions, so curves are
# reproducible bit for bit only on the same Python and torch versions.
CORPUS_MODULES = (
    "textwrap",
    "string",
    "difflib",
    "heapq",
    "bisect",
    "fractions",
    "colorsys",
    "shlex",
    "fnmatch",
    "calendar",
    "gettext",
    "pprint",
    "queue",
    "sched",
    "tabnanny",
)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One sample run: its training configuration and what it is meant to show."""

    name: str
    label: str
    description: str
    learning_rate: float
    warmup_steps: int  # the warmup length in optimizer steps
    max_steps: int = 300
    # When set, the run is configured the LLaMA-Factory way (warmup_ratio); warmup_steps must be
    # the step count the Trainer derives from it, ceil(ratio * max_steps).
    warmup_ratio: float | None = None
    lr_scheduler_type: str = "cosine"
    logging_steps: int = 10
    max_grad_norm: float = 1.0
    adam_epsilon: float = 1e-8
    adam_beta2: float = 0.999
    weight_decay: float = 0.0
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    architecture: str = "gpt2"  # "gpt2" (pre-LN) or "llama" (RMSNorm, SwiGLU)
    d_model: int = 128
    n_layer: int = 2
    # Standard deviation of the random initial weights (transformers' default is 0.02).
    initializer_range: float = 0.02
    seed: int = 42
    bf16: bool = False
    # The run that differs only in warmup; for a numerical_instability run, the run that differs
    # only in its numerics (same warmup), to show that the warmup is not the cause.
    sibling: str | None = None
    resume_at: int | None = None  # simulate a crash at this step and resume from a checkpoint
    save_steps: int | None = None

    @property
    def model_name(self) -> str:
        """A descriptive name of the tiny randomly initialised model."""
        name = f"tiny-{self.architecture}-{self.n_layer}l-{self.d_model}d-char{len(VOCAB)}"
        # A non-default initialisation changes how the run starts, so the name says so.
        return name if self.initializer_range == 0.02 else f"{name}-std{self.initializer_range:g}"


# Learning rates are scaled to this tiny model: with Adam, 3e-3 is its sane peak, ~2e-2 is where the
# untrained model starts to spike without warmup, and ~1 makes the SwiGLU model overflow.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="healthy",
        label="healthy",
        description="10% linear warmup to a sane peak LR, then cosine decay: loss falls smoothly.",
        learning_rate=3e-3,
        warmup_steps=30,
        warmup_ratio=0.1,
    ),
    Scenario(
        name="healthy_resumed",
        label="healthy",
        description=(
            "A healthy run (10% warmup, linear decay, batch 4 x 2 accumulation) killed at step 130 "
            "and resumed from checkpoint-100: steps 105-125 are logged twice, there are two "
            "TensorBoard event files and two SwanLab run folders (the first one crashed)."
        ),
        learning_rate=2e-3,
        warmup_steps=30,
        lr_scheduler_type="linear",
        logging_steps=5,
        batch_size=4,
        gradient_accumulation_steps=2,
        resume_at=130,
        save_steps=100,
    ),
    Scenario(
        name="warmup_too_short_spikes",
        label="warmup_too_short",
        description=(
            "No warmup at a high peak LR: the untrained model takes full-size Adam steps at once "
            "and the loss spikes to twice its starting value within five steps."
        ),
        learning_rate=5e-2,
        warmup_steps=0,
        logging_steps=1,
        sibling="warmup_10pct_high_lr",
    ),
    Scenario(
        name="warmup_10pct_high_lr",
        label="healthy",
        description=(
            "Same run as warmup_too_short_spikes with a 10% warmup: no loss above the starting "
            "value (the bumps at steps 5 and 7, 3.6 to 4.35, stay below it) and no spike after the "
            "peak. The peak LR is above this model's optimum (its final loss stays above the "
            "healthy run's), which the curve alone does not show."
        ),
        learning_rate=5e-2,
        warmup_steps=30,
        logging_steps=1,
        sibling="warmup_too_short_spikes",
    ),
    Scenario(
        name="warmup_too_short_nan",
        label="warmup_too_short",
        description=(
            "2-step warmup to a very high LR on a Llama-style (RMSNorm, SwiGLU) model: the loss "
            "climbs and the activations overflow; grad_norm becomes non-finite a few dozen steps "
            "after the peak. The Trainer's default logging_nan_inf_filter then logs loss 0.0 "
            "while grad_norm is NaN."
        ),
        learning_rate=1.2,
        warmup_steps=2,
        logging_steps=1,
        architecture="llama",
        seed=1,
        sibling="lr_too_high",
    ),
    Scenario(
        name="lr_too_high",
        label="lr_too_high",
        description=(
            "Same run as warmup_too_short_nan with a 10% warmup: no NaN, but the LR is far too "
            "high anyway: the loss starts rising at a tenth of the peak LR, keeps diverging for "
            "36 steps after the peak (max ~105 at step 66) and stays above 5 until step 186, "
            "when the cosine schedule has brought the LR down."
        ),
        learning_rate=1.2,
        warmup_steps=30,
        logging_steps=1,
        architecture="llama",
        seed=1,
        sibling="warmup_too_short_nan",
    ),
    Scenario(
        name="warmup_too_long_60pct",
        label="warmup_too_long",
        description=(
            "60% of the run spent warming up a Llama-style model with small initial weights (std "
            "0.002, a tenth of the default) to a modest peak LR of 3e-4. Its first steps at a "
            "tiny LR barely move it: the loss sits near its starting value ln(100) = 4.61 for "
            "the first ~35 steps (4.49 at step 30, LR 4.8e-5) and is still 4.18 at step 60, "
            "where its 10%-warmup sibling is at 3.41. Both end at about the same loss (2.50 vs "
            "2.53): the cost is the early budget spent before the loss moves."
        ),
        learning_rate=3e-4,
        warmup_steps=180,
        logging_steps=5,
        architecture="llama",
        initializer_range=0.002,
        sibling="warmup_10pct_small_init",
    ),
    Scenario(
        name="warmup_10pct_small_init",
        label="healthy",
        description=(
            "Same run as warmup_too_long_60pct with a 10% warmup: the loss is more than 3% below "
            "its starting value by step 20 (4.11 at step 30, 3.41 at step 60) and falls smoothly "
            "to 2.53."
        ),
        learning_rate=3e-4,
        warmup_steps=30,
        logging_steps=5,
        architecture="llama",
        initializer_range=0.002,
        sibling="warmup_too_long_60pct",
    ),
    Scenario(
        name="warmup_too_long_2x_run",
        label="warmup_too_long",
        description=(
            "The healthy run with a 600-step warmup in a 300-step run: the LR climbs for the whole "
            "run and ends at half its configured peak; no decay happens."
        ),
        learning_rate=3e-3,
        warmup_steps=600,
        logging_steps=5,
        sibling="healthy",
    ),
    Scenario(
        name="warmup_too_long_5x_run",
        label="warmup_too_long",
        description=(
            "The healthy run with a 1500-step warmup (a value meant for a longer run) in a "
            "300-step run: the loss sits at its starting value for the first ~10 steps, declines "
            "slowly, and the LR ends at a fifth of its configured peak."
        ),
        learning_rate=3e-3,
        warmup_steps=1500,
        logging_steps=5,
        sibling="healthy",
    ),
    Scenario(
        name="numerical_instability_adam_eps0",
        label="numerical_instability",
        description=(
            "The healthy run with adam_epsilon=0 (nothing else differs): parameters whose "
            "gradient is exactly 0, such as the position embedding of the last position (its "
            "output is never scored and the causal mask hides it from the others), get a 0/0 "
            "AdamW update on step 1, applied at LR 0, and turn NaN; attention spreads the NaN. "
            "grad_norm is NaN from the first log (step 10, LR 9e-4 = 30% of the peak 3e-3; the "
            "window logged there starts at step 1, LR 0 = 0% of the peak) to the end. The "
            "Trainer's NaN filter logs loss 2.362 at step 10 (only step 1's 4.294 is finite in "
            "that window) and 0.0 from step 20. Logged every step, the same run reads grad_norm "
            "6.652 at step 1 (LR 0) and NaN from step 2 (LR 1e-4, 3.3% of the peak)."
        ),
        learning_rate=3e-3,
        warmup_steps=30,
        warmup_ratio=0.1,
        adam_epsilon=0.0,
        sibling="healthy",
    ),
)


# ----------------------------------------------------------------------------- data and model


def _corpus() -> str:
    """Concatenate the source of a fixed list of stdlib modules, mapped onto ``VOCAB``."""
    import importlib

    parts = []
    for name in CORPUS_MODULES:
        module = importlib.import_module(name)
        parts.append(Path(module.__file__).read_text(encoding="utf-8"))
    allowed = set(VOCAB)
    return "".join(c if c in allowed else "?" for c in "\n".join(parts))


class _CharDataset:
    """Non-overlapping windows of ``SEQ_LEN`` character ids; labels equal inputs (causal LM)."""

    def __init__(self, text: str) -> None:
        import torch

        index = {c: i for i, c in enumerate(VOCAB)}
        ids = torch.tensor([index[c] for c in text], dtype=torch.long)
        n = len(ids) // SEQ_LEN
        self.blocks = ids[: n * SEQ_LEN].view(n, SEQ_LEN)

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, Any]:
        block = self.blocks[i]
        return {"input_ids": block, "labels": block.clone()}


def _model(s: Scenario) -> Any:
    """Build the tiny model from a config written here (random init under the current seed)."""
    if s.architecture == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(
            vocab_size=len(VOCAB),
            n_positions=SEQ_LEN,
            n_embd=s.d_model,
            n_layer=s.n_layer,
            n_head=4,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            initializer_range=s.initializer_range,
        )
        return GPT2LMHeadModel(config)
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=s.d_model,
        intermediate_size=4 * s.d_model,
        num_hidden_layers=s.n_layer,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=SEQ_LEN,
        tie_word_embeddings=False,
        initializer_range=s.initializer_range,
    )
    return LlamaForCausalLM(config)


# ----------------------------------------------------------------------------- callbacks


def _callbacks() -> tuple[type, type]:
    """Define the two callbacks lazily, so ``--list`` does not import transformers."""
    from transformers import TrainerCallback

    class LlamaFactoryLog(TrainerCallback):
        """Append ``trainer_log.jsonl`` lines the way LLaMA-Factory's ``LogCallback`` does."""

        def __init__(self) -> None:
            self.start_time = time.time()
            self.cur_steps = 0
            self.max_steps = 0
            self.elapsed_time = ""
            self.remaining_time = ""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start_time = time.time()
            self.cur_steps = 0
            self.max_steps = state.max_steps

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            elapsed = time.time() - self.start_time
            per_step = elapsed / state.global_step if state.global_step != 0 else 0
            self.cur_steps = state.global_step
            self.elapsed_time = str(timedelta(seconds=int(elapsed)))
            self.remaining_time = str(
                timedelta(seconds=int((self.max_steps - self.cur_steps) * per_step))
            )

        def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            last = state.log_history[-1]
            logs = {
                "current_steps": self.cur_steps,
                "total_steps": self.max_steps,
                "loss": last.get("loss"),
                "eval_loss": last.get("eval_loss"),
                "lr": last.get("learning_rate"),
                "epoch": last.get("epoch"),
                "percentage": round(self.cur_steps / self.max_steps * 100, 2)
                if self.max_steps != 0
                else 100,
                "elapsed_time": self.elapsed_time,
                "remaining_time": self.remaining_time,
            }
            logs = {k: v for k, v in logs.items() if v is not None}
            with open(
                os.path.join(args.output_dir, "trainer_log.jsonl"), "a", encoding="utf-8"
            ) as f:
                f.write(json.dumps(logs) + "\n")

    class CrashAt(TrainerCallback):
        """Stop the process-like run abruptly after ``step`` (a checkpoint exists before it)."""

        def __init__(self, step: int) -> None:
            self.step = step

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == self.step:
                raise _SimulatedCrash(f"training interrupted at step {self.step}")

    return LlamaFactoryLog, CrashAt


class _SimulatedCrash(RuntimeError):
    """Raised inside the training loop to leave a run the way a killed job leaves it."""


# ----------------------------------------------------------------------------- training


def _training_args(s: Scenario, resume_from: str | None = None) -> Any:
    from transformers import TrainingArguments

    saving = s.resume_at is not None
    return TrainingArguments(
        output_dir=s.name,  # relative to this folder: no machine path reaches the logs
        run_name=s.name,
        max_steps=s.max_steps,
        learning_rate=s.learning_rate,
        # transformers 5 reads a warmup_steps below 1 as a ratio of the total steps.
        warmup_steps=s.warmup_ratio if s.warmup_ratio is not None else s.warmup_steps,
        lr_scheduler_type=s.lr_scheduler_type,
        logging_steps=s.logging_steps,
        max_grad_norm=s.max_grad_norm,
        adam_epsilon=s.adam_epsilon,
        adam_beta2=s.adam_beta2,
        weight_decay=s.weight_decay,
        optim="adamw_torch",
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        bf16=s.bf16,
        use_cpu=True,
        dataloader_num_workers=0,
        save_strategy="steps" if saving else "no",
        save_steps=s.save_steps or 500,
        disable_tqdm=True,
        report_to=["tensorboard", "swanlab"],
        seed=s.seed,
        full_determinism=True,
        resume_from_checkpoint=resume_from,
    )


def _train_once(s: Scenario, text: str, resume_from: str | None, crash_at: int | None) -> Any:
    """One Trainer.train() call; returns the trainer. Raises ``_SimulatedCrash`` if asked to."""
    import swanlab
    import torch
    from transformers import Trainer, default_data_collator, set_seed

    torch.set_num_threads(1)
    # Read by the callbacks when the Trainer builds them: fixed folders inside the output_dir.
    os.environ["TENSORBOARD_LOGGING_DIR"] = f"{s.name}/runs"
    set_seed(s.seed, deterministic=True)
    model = _model(s)
    log_cb, crash_cb = _callbacks()
    callbacks = [log_cb()]
    if crash_at is not None:
        callbacks.append(crash_cb(crash_at))
    # transformers' SwanLab callback probes ``swanlab.get_run()``, which raises instead of returning
    # None on SwanLab 0.10, so start the run here with what the callback would pass; the callback
    # then adds the config and logs to it.
    swanlab.init(
        project=SWANLAB_PROJECT,
        name=s.name,
        mode="offline",
        log_dir=f"{s.name}/swanlog",
    )
    trainer = Trainer(
        model=model,
        args=_training_args(s, resume_from),
        train_dataset=_CharDataset(text),
        data_collator=default_data_collator,
        callbacks=callbacks,
    )
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    except _SimulatedCrash as exc:
        # What a killed job leaves: events flushed up to the last log, SwanLab run not finished
        # cleanly. Close the writers so the next attempt can start in the same process.
        for cb in trainer.callback_handler.callbacks:
            writer = getattr(cb, "tb_writer", None)
            if writer is not None:
                writer.close()
                cb.tb_writer = None
        swanlab.finish(state="crashed", error=str(exc))
        return trainer
    swanlab.finish()
    trainer.save_state()  # trainer_state.json at the top of the output_dir
    return trainer


def _run_scenario(s: Scenario, text: str) -> None:
    """Train one scenario from scratch into ``HERE/<name>`` and reduce the folder to logs."""
    out = HERE / s.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    if s.resume_at is None:
        _train_once(s, text, None, None)
    else:
        _train_once(s, text, None, s.resume_at)
        checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        _train_once(s, text, f"{s.name}/{checkpoints[-1].name}", None)
    _write_training_args_yaml(s)
    _strip(out)


def _strip(out: Path) -> None:
    """Drop weights, optimizer states and media; keep logs; remove host names from files."""
    for ckpt in out.glob("checkpoint-*"):
        for f in ckpt.iterdir():
            if f.name != "trainer_state.json":
                shutil.rmtree(f) if f.is_dir() else f.unlink()
    for name in ("model.safetensors", "training_args.bin", "config.json", "generation_config.json"):
        (out / name).unlink(missing_ok=True)
    # TensorBoard names event files events.out.tfevents.<time>.<hostname>.<pid>.<n>.
    pattern = re.compile(r"^(events\.out\.tfevents\.\d+)\.(.+)\.(\d+)\.(\d+)$")
    for k, f in enumerate(sorted((out / "runs").glob("events.out.tfevents.*")), start=1):
        m = pattern.match(f.name)
        if m:
            f.rename(f.with_name(f"{m.group(1)}.localhost.{k}.{m.group(4)}"))
    # SwanLab drops a ``*`` .gitignore into its log dir, which would keep the runs out of git.
    (out / "swanlog" / ".gitignore").unlink(missing_ok=True)
    for run in (out / "swanlog").glob("run-*"):
        for sub in ("media", "debug", "logs"):
            if (run / sub).is_dir():
                shutil.rmtree(run / sub)
        for store in run.glob("run-*.swanlab"):
            _relativise_swanlab_store(store)
        meta = run / "files" / "swanlab-metadata.json"
        if meta.exists():
            meta.write_text(json.dumps(_scrub_metadata(json.loads(meta.read_text())), indent=2))


def _relativise_swanlab_store(store: Path) -> None:
    """Rewrite a run file with SwanLab's own reader/writer, making file paths relative.

    SwanLab's save records hold the absolute path of ``files/config.yaml`` and friends; they
    become paths relative to this folder (``healthy/swanlog/run-.../files/config.yaml``).
    """
    from swanlab.proto.swanlab.record.v1.record_pb2 import Record
    from swanlab.sdk.internal.core_python.store import DataStoreReader, DataStoreWriter

    reader = DataStoreReader()
    reader.open(store)
    records = list(reader)
    reader.close()
    tmp = store.with_name(store.name + ".tmp")
    writer = DataStoreWriter()
    writer.open(tmp)
    for raw in records:
        record = Record.FromString(raw)
        _relativise_message(record)
        writer.write(record.SerializeToString())
    writer.close()
    tmp.replace(store)


# An absolute POSIX path that is not part of a URL (captured console lines quote file names).
_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.+-]+/)+[\w.+-]*")


def _relative_text(text: str) -> str:
    """Paths under this folder become relative to it; other absolute paths become ``<path>``."""
    return _ABS_PATH.sub("<path>", text.replace(str(HERE) + os.sep, ""))


def _relativise_message(message: Any) -> None:
    """Apply ``_relative_text`` to every string field of a protobuf message, recursively."""
    for field, value in message.ListFields():
        repeated = field.label == field.LABEL_REPEATED
        if field.type == field.TYPE_STRING:
            if repeated:
                fixed = [_relative_text(v) for v in value]
                del value[:]
                value.extend(fixed)
            else:
                setattr(message, field.name, _relative_text(value))
        elif field.type == field.TYPE_MESSAGE:
            for item in value if repeated else [value]:
                if hasattr(item, "ListFields"):
                    _relativise_message(item)


def _scrub_metadata(meta: Any) -> Any:
    """Replace machine-identifying values (host, user, paths, pid) with fixed placeholders."""
    if isinstance(meta, dict):
        clean = {}
        for key, value in meta.items():
            lowered = key.lower()
            if lowered in _SCRUB_KEYS:
                clean[key] = _SCRUB_KEYS[lowered]
            else:
                clean[key] = _scrub_metadata(value)
        return clean
    if isinstance(meta, list):
        return [_scrub_metadata(v) for v in meta]
    if isinstance(meta, str) and (meta.startswith("/") or "\\" in meta):
        return "<path>"
    return meta


_SCRUB_KEYS: dict[str, Any] = {
    "hostname": "localhost",
    "pid": 0,
    "username": "user",
    "user": "user",
    "cwd": "<path>",
    "executable": "<path>",
    "command": "python sample_logs/generate.py",
}


def _write_training_args_yaml(s: Scenario) -> None:
    """The LLaMA-Factory-style config a user of that tool would have written for this run."""
    import yaml

    warmup = (
        {"warmup_ratio": s.warmup_ratio}
        if s.warmup_ratio is not None
        else {"warmup_steps": s.warmup_steps}
    )
    config = {
        "model_name_or_path": s.model_name,
        "stage": "pt",
        "do_train": True,
        "finetuning_type": "full",
        "dataset": "python_stdlib_source",
        "cutoff_len": SEQ_LEN,
        "output_dir": s.name,
        "logging_steps": s.logging_steps,
        "save_strategy": "steps" if s.resume_at is not None else "no",
        **({"save_steps": s.save_steps} if s.resume_at is not None else {}),
        "report_to": "tensorboard",
        "use_swanlab": True,
        "swanlab_project": SWANLAB_PROJECT,
        "swanlab_mode": "offline",
        "per_device_train_batch_size": s.batch_size,
        "gradient_accumulation_steps": s.gradient_accumulation_steps,
        "learning_rate": s.learning_rate,
        "max_steps": s.max_steps,
        "lr_scheduler_type": s.lr_scheduler_type,
        **warmup,
        "max_grad_norm": s.max_grad_norm,
        "adam_epsilon": s.adam_epsilon,
        "adam_beta2": s.adam_beta2,
        "weight_decay": s.weight_decay,
        "bf16": s.bf16,
        "seed": s.seed,
        "resume_from_checkpoint": (
            f"{s.name}/checkpoint-{_last_checkpoint_before(s)}" if s.resume_at else None
        ),
    }
    with open(HERE / s.name / "training_args.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)


def _last_checkpoint_before(s: Scenario) -> int:
    assert s.resume_at is not None and s.save_steps is not None
    return (s.resume_at // s.save_steps) * s.save_steps


# ----------------------------------------------------------------------------- manifest


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _num(x: Any, digits: int = 4) -> float | None:
    """JSON-safe rounding: non-finite values become null (the manifest stays strict JSON)."""
    return float(f"{x:.{digits}g}") if _finite(x) else None


def _curve(s: Scenario) -> dict[str, Any]:
    """Figures read back from the final trainer_state.json: what the curve actually shows."""
    state = json.loads((HERE / s.name / "trainer_state.json").read_text())
    rows = [h for h in state["log_history"] if "loss" in h and "step" in h]
    steps = [h["step"] for h in rows]
    loss = [h["loss"] for h in rows]
    gnorm = [h.get("grad_norm") for h in rows]
    lr = [h["learning_rate"] for h in rows]
    finite_loss = [(v, st) for v, st in zip(loss, steps, strict=True) if _finite(v)]
    finite_gn = [(v, st) for v, st in zip(gnorm, steps, strict=True) if _finite(v)]
    bad = [
        st for st, v, g in zip(steps, loss, gnorm, strict=True) if not (_finite(v) and _finite(g))
    ]
    peak = max(lr)
    warm_end = min(s.warmup_steps, s.max_steps)
    at_warm_end = [v for v, st in finite_loss if st <= warm_end]
    return {
        "logged_steps": len(rows),
        "first_step": steps[0],
        "last_step": steps[-1],
        "global_step": state["global_step"],
        "max_logged_lr": _num(peak),
        "max_logged_lr_step": steps[lr.index(peak)],
        "reached_configured_peak": peak >= 0.95 * s.learning_rate,
        "loss_first": _num(loss[0]),
        "loss_at_warmup_end": _num(at_warm_end[-1]) if at_warm_end and warm_end > 0 else None,
        "loss_min": _num(min(finite_loss)[0]),
        "loss_min_step": min(finite_loss)[1],
        "loss_max": _num(max(finite_loss)[0]),
        "loss_max_step": max(finite_loss)[1],
        "loss_final": _num(loss[-1]),
        # Losses at fixed shares of the run, to compare sibling runs step for step.
        "loss_at_step": {
            str(t): _num(_last_at(steps, loss, t))
            for t in sorted({s.max_steps // 10, s.max_steps // 5, s.max_steps // 2, s.max_steps})
            if t >= steps[0]
        },
        "grad_norm_max": _num(max(finite_gn)[0]) if finite_gn else None,
        "grad_norm_max_step": max(finite_gn)[1] if finite_gn else None,
        "first_nonfinite_step": bad[0] if bad else None,
        "nonfinite_logged_steps": len(bad),
        # The LR applied over the steps that led to the first non-finite log (from the step after
        # the previous log): a NaN that shows there can come from any step of that window.
        "first_nonfinite_lr": _num(lr[steps.index(bad[0])]) if bad else None,
        "first_nonfinite_window_lr_min": _num(_window_lr_min(steps, lr, bad[0])) if bad else None,
    }


def _window_lr_min(steps: list[int], lr: list[float], step: int) -> float:
    """The lowest LR applied from the step after the log before ``step`` up to ``step``.

    Before the first log, the LR is followed back along the line through the first two logged
    values (a warmup ramp), floored at 0: that part of the window was applied but not logged.
    """
    i = steps.index(step)
    if i == 0:
        return min(lr[0], _ramp_back(steps, lr, 1))
    # Between two logs the LR moves monotonically: its lowest value is at one end of the window.
    gap = steps[i] - steps[i - 1]
    start = lr[i - 1] + (lr[i] - lr[i - 1]) / gap
    return min(start, lr[i])


def _ramp_back(steps: list[int], lr: list[float], target: int) -> float:
    """The LR at ``target`` (before the first log) on the line through the first two logs."""
    if len(steps) < 2 or lr[1] <= lr[0]:
        return lr[0]
    slope = (lr[1] - lr[0]) / (steps[1] - steps[0])
    return max(0.0, lr[0] - slope * (steps[0] - target))


def _story_problems(s: Scenario, c: dict[str, Any]) -> list[str]:
    """Check that the curve shows what the label claims; a regeneration must not drift silently."""
    problems = []

    def need(ok: bool, claim: str) -> None:
        if not ok:
            problems.append(f"{s.name}: expected {claim}; curve: {c}")

    need(c["global_step"] == s.max_steps, f"global_step {s.max_steps}")
    if s.warmup_ratio is not None:
        need(
            math.ceil(s.warmup_ratio * s.max_steps) == s.warmup_steps, "warmup_steps from the ratio"
        )
    stable = c["first_nonfinite_step"] is None and c["loss_max"] <= c["loss_first"] * 1.05
    if s.label == "healthy":
        need(stable, "no non-finite value and no loss above its first value")
        need(c["loss_final"] < c["loss_first"] - 1.0, "a loss drop of more than 1.0")
    elif s.label == "warmup_too_short":
        need(s.warmup_steps <= 2, "a warmup of at most 2 steps")
        need(
            c["first_nonfinite_step"] is not None or c["loss_max"] > 1.5 * c["loss_first"],
            "a non-finite value or a loss spike above 1.5x the first loss",
        )
    elif s.label == "warmup_too_long":
        need(s.warmup_steps >= 0.5 * s.max_steps, "a warmup of at least half the run")
        need(stable, "a stable run")
        if s.warmup_steps > s.max_steps:
            need(not c["reached_configured_peak"], "an LR that never reaches its peak")
        else:
            # The LR does peak, so the cost must show in the curve itself: a loss that has
            # hardly moved from its first value a tenth of the way into the run.
            early = c["loss_at_step"][str(s.max_steps // 10)]
            need(early >= 0.95 * c["loss_first"], "a loss within 5% of its start at 10% of the run")
    elif s.label == "lr_too_high":
        need(0.05 * s.max_steps <= s.warmup_steps <= 0.2 * s.max_steps, "a 5-20% warmup")
        need(c["loss_max_step"] > s.warmup_steps, "the loss maximum after the warmup")
        need(c["loss_max"] > 2 * c["loss_first"], "a loss maximum above 2x the first loss")
    elif s.label == "numerical_instability":
        # A usual warmup, yet NaN/Inf from a window in which the LR was still ~0 (at most 2% of
        # its peak): the warmup cannot be the cause.
        need(0.05 * s.max_steps <= s.warmup_steps <= 0.2 * s.max_steps, "a 5-20% warmup")
        need(c["first_nonfinite_step"] is not None, "a non-finite value")
        if c["first_nonfinite_step"] is not None:
            need(
                c["first_nonfinite_window_lr_min"] <= 0.02 * c["max_logged_lr"],
                "the first non-finite value from a window with an LR <= 2% of the peak",
            )
    return problems


def _last_at(steps: list[int], values: list[float], target: int) -> float:
    """The last value logged at or before ``target``."""
    return [v for st, v in zip(steps, values, strict=True) if st <= target][-1]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(s: Scenario) -> list[dict[str, Any]]:
    root = HERE / s.name
    return [
        {"path": p.relative_to(HERE).as_posix(), "size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


_NOT_CONFIG = ("name", "label", "description", "sibling")  # Scenario fields that are no settings


def _entry(s: Scenario, seconds: float | None) -> dict[str, Any]:
    config = {k: v for k, v in dataclasses.asdict(s).items() if k not in _NOT_CONFIG}
    config["model_name_or_path"] = s.model_name
    config["seq_len"] = SEQ_LEN
    return {
        "name": s.name,
        "label": s.label,
        "description": s.description,
        "sibling": s.sibling,
        "config": config,
        "curve": _curve(s),
        "generation_seconds": round(seconds, 1) if seconds is not None else None,
        "files": _files(s),
    }


def _versions(text: str) -> dict[str, Any]:
    import swanlab
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "swanlab": swanlab.__version__,
        "corpus_modules": list(CORPUS_MODULES),
        "corpus_chars": len(text),
        "corpus_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def _write_manifest(entries: dict[str, dict[str, Any]], text: str) -> None:
    order = [s.name for s in SCENARIOS]
    manifest = {
        "generator": "sample_logs/generate.py",
        "regenerate": "python sample_logs/generate.py",
        "labels": sorted(LABELS),
        "environment": _versions(text),
        "scenarios": [entries[n] for n in order if n in entries],
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")


LABELS = frozenset(
    {"healthy", "warmup_too_short", "warmup_too_long", "lr_too_high", "numerical_instability"}
)


def main(argv: list[str] | None = None) -> int:
    """Train the selected scenarios, then rewrite MANIFEST.json; print the time taken."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="scenario to regenerate")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    opts = parser.parse_args(argv)
    by_name = {s.name: s for s in SCENARIOS}
    if opts.list:
        for s in SCENARIOS:
            print(f"{s.name:32} {s.label}")
        return 0
    unknown = sorted(set(opts.only or ()) - set(by_name))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(by_name)}")
    selected = [by_name[n] for n in opts.only] if opts.only else list(SCENARIOS)

    import transformers

    transformers.logging.set_verbosity_warning()
    os.chdir(HERE)  # every path handed to the Trainer and the loggers is relative to this folder
    entries: dict[str, dict[str, Any]] = {}
    if MANIFEST.exists() and opts.only:
        old = json.loads(MANIFEST.read_text())
        entries = {e["name"]: e for e in old["scenarios"] if e["name"] in by_name}
        # A kept entry written before a configuration field existed was trained with its default.
        defaults = {
            f.name: f.default
            for f in dataclasses.fields(Scenario)
            if f.default is not dataclasses.MISSING and f.name not in _NOT_CONFIG
        }
        for e in entries.values():
            for key, value in defaults.items():
                e["config"].setdefault(key, value)
            # Curve figures are re-read from the kept files, so figures added later are there too.
            if (HERE / e["name"] / "trainer_state.json").exists():
                e["curve"] = _curve(by_name[e["name"]])
    text = _corpus()
    started = time.perf_counter()
    for s in selected:
        t0 = time.perf_counter()
        _run_scenario(s, text)
        seconds = time.perf_counter() - t0
        entries[s.name] = _entry(s, seconds)
        print(f"[sample_logs] {s.name}: {seconds:.1f} s", flush=True)
    for stale in HERE.iterdir():
        if stale.is_dir() and stale.name not in by_name and (stale / "trainer_state.json").exists():
            shutil.rmtree(stale)
    _write_manifest(entries, text)
    total = time.perf_counter() - started
    print(f"[sample_logs] {len(selected)} scenario(s) in {total:.1f} s; wrote {MANIFEST.name}")
    problems = [p for s in selected for p in _story_problems(s, entries[s.name]["curve"])]
    for problem in problems:
        print(f"[sample_logs] STORY CHECK FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
