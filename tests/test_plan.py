"""Tests for the pre-run warmup plan: step arithmetic, guide checks and LR schedules."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup_monitor.errors import ConfigError
from warmup_monitor.plan import PlanResult, load_config, parse_model_size, plan
from warmup_monitor.render.plan import render_text

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch = pytest.importorskip("torch")
torch.set_num_threads(1)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "plan"


def _plan(name: str, **kwargs: object) -> PlanResult:
    return plan(load_config(FIXTURES / name), **kwargs)  # type: ignore[arg-type]


def _codes(result: PlanResult) -> dict[str, str]:
    return {f.code: f.severity for f in result.findings}


def _write(tmp_path: Path, text: str, name: str = "train.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- The guide's worked example and case studies -------------------------------------------------
def test_guide_example_with_floor_rounding_matches_the_guide() -> None:
    """10,000 samples, 8 x 4 x 2 GPUs, 3 epochs: 64 / 156 / 468 / 47 as the guide computes."""
    result = _plan("guide_example.yaml", gpus=2, rounding="floor")
    assert result.steps.effective_batch_size == 64
    assert result.steps.steps_per_epoch == 156
    assert result.steps.total_steps == 468
    assert result.warmup.steps == 47
    assert result.warmup.share == pytest.approx(47 / 468)
    assert result.exit_code == 0


def test_guide_example_with_current_trainer_rounding() -> None:
    """transformers >= 4.52 counts the partial accumulation window: 157 per epoch, 471 total."""
    result = _plan("guide_example.yaml", gpus=2)
    assert result.steps.batches_per_epoch == 625
    assert result.steps.steps_per_epoch == 157
    assert result.steps.total_steps == 471
    assert result.warmup.steps == 48  # ceil(0.1 * 471)
    assert result.steps.guide_steps_per_epoch == pytest.approx(156.25)
    # One rule for the check and the advice: 10% is 48, under the guide's 50-step minimum.
    assert [f.code for f in result.findings if f.severity != "info"] == ["warmup_too_short"]
    (rec,) = result.recommendations
    assert (rec.parameter, rec.suggested) == ("warmup_steps", 50)
    assert "10% of 471 steps is 48, raised to the guide's minimum of 50 steps" in rec.reason
    (share,) = [c for c in result.checks if c.basis == "share"]
    assert share.low == pytest.approx(50 / 471) and share.placement == "below"


def test_case1_warmup_flagged_too_long_with_the_guides_numbers() -> None:
    """Case 1 (5,000 / 4x8 / 3 epochs / warmup 200) is ~43% of the run: too long, use 10%."""
    result = _plan("case1_customer_support.yaml", rounding="floor")
    assert result.steps.total_steps == 468
    assert _codes(result)["warmup_too_long"] == "warning"
    texts = [r.reason for r in result.recommendations]
    assert (
        "warmup_steps 200 is 43% of 468 total steps; the guide's maximum is 20%: use 50 (10% of "
        "468 steps is 47, raised to the guide's minimum of 50 steps)" in texts
    )
    assert result.model_size_b == 7.0 and result.model_size_source == "model name"


def test_case1_with_current_rounding() -> None:
    """With the current Trainer the same config runs 471 steps and the warmup is 42%."""
    result = _plan("case1_customer_support.yaml")
    assert (result.steps.total_steps, result.warmup.steps) == (471, 200)
    assert result.warmup.share == pytest.approx(200 / 471)
    assert result.recommendations[0].suggested == 50


def test_case2_ten_percent_is_fine() -> None:
    """Case 2 (50,000 / 8x4 / 2 epochs / warmup 300) is ~10%: no warning, no error."""
    old = _plan("case2_tech_docs.yaml", rounding="floor")
    new = _plan("case2_tech_docs.yaml")
    # The guide says 3125 (50000 / 32 * 2); the Trainer never counts half an update step.
    assert old.steps.total_steps == 1562 * 2 == 3124
    assert new.steps.total_steps == 1563 * 2 == 3126
    for result in (old, new):
        assert result.warmup.share == pytest.approx(300 / result.steps.total_steps)
        assert not [f for f in result.findings if f.severity != "info"]
        assert result.exit_code == 0


def test_case3_qlora_short_run() -> None:
    """Case 3 (1,000 / 2x8 / 1 epoch / warmup 20 / QLoRA): 62-63 steps, 32% warmup, too long."""
    old = _plan("case3_prototype.yaml", rounding="floor")
    new = _plan("case3_prototype.yaml")
    assert old.steps.total_steps == 62
    assert new.steps.total_steps == 63
    assert old.config.method == "qlora"
    for result in (old, new):
        assert round(result.warmup.share * 100) == 32
        assert "warmup_too_long" in _codes(result)
    method = next(c for c in new.checks if c.basis == "method")
    assert (method.low, method.high, method.placement) == (100, 300, "below")


# --- Agreement with the real HF Trainer ---------------------------------------------------------
class _Tiny(torch.nn.Module):
    """Smallest model the Trainer accepts: one weight, returns a loss."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Linear(1, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        return {"loss": self.w(x).pow(2).mean()}


class _Data(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {"x": torch.zeros(1)}


def _trainer_counts(
    out: str,
    n: int,
    batch: int,
    accum: int,
    epochs: float,
    warmup: float,
    drop: bool,
    max_steps: int,
) -> tuple[int, int, int]:
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accum,
        num_train_epochs=epochs,
        max_steps=max_steps,
        warmup_steps=warmup,
        dataloader_drop_last=drop,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
    )
    trainer = Trainer(model=_Tiny(), args=args, train_dataset=_Data(n))
    values = trainer.set_initial_training_values(args, trainer.get_train_dataloader())
    per_epoch, total = values[1], values[6]
    return per_epoch, total, args.get_warmup_steps(total)


@pytest.fixture(scope="module")
def out_dir() -> object:
    with tempfile.TemporaryDirectory() as tmp:
        yield tmp


@pytest.mark.parametrize(
    ("name", "samples"),
    [
        ("guide_example.yaml", 10_000),
        ("case1_customer_support.yaml", None),
        ("case2_tech_docs.yaml", None),
        ("case3_prototype.yaml", None),
    ],
)
def test_counts_match_the_trainer(out_dir: str, name: str, samples: int | None) -> None:
    """Steps per epoch, total and warmup equal what the installed Trainer computes."""
    result = _plan(name, samples=samples)
    cfg = result.config
    warmup = cfg.warmup_steps or cfg.warmup_ratio  # 5.x spells a ratio as warmup_steps < 1
    expected = _trainer_counts(
        out_dir,
        result.samples or 0,
        cfg.per_device_train_batch_size,
        cfg.gradient_accumulation_steps,
        cfg.num_train_epochs,
        warmup,
        cfg.dataloader_drop_last,
        cfg.max_steps,
    )
    assert (result.steps.steps_per_epoch, result.steps.total_steps, result.warmup.steps) == expected


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 5000),
    batch=st.integers(1, 16),
    accum=st.integers(1, 16),
    epochs=st.sampled_from([1.0, 2.0, 3.0, 0.5, 2.5]),
    warmup=st.sampled_from([0, 0.03, 0.1, 0.5, 5, 50]),
    drop=st.booleans(),
    max_steps=st.sampled_from([-1, -1, 7, 300]),
)
def test_counts_match_the_trainer_property(
    out_dir: str,
    n: int,
    batch: int,
    accum: int,
    epochs: float,
    warmup: float,
    drop: bool,
    max_steps: int,
) -> None:
    """For any dataset size and batch layout the plan counts the steps the Trainer will run."""
    if drop and n < batch:
        return  # the Trainer refuses an empty dataloader; the plan reports it as an error
    config = {
        "per_device_train_batch_size": batch,
        "gradient_accumulation_steps": accum,
        "num_train_epochs": epochs,
        "max_steps": max_steps,
        "warmup_steps": warmup,
        "dataloader_drop_last": drop,
    }
    path = Path(out_dir) / "prop.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    result = plan(load_config(path), samples=n)
    expected = _trainer_counts(out_dir, n, batch, accum, epochs, warmup, drop, max_steps)
    assert (result.steps.steps_per_epoch, result.steps.total_steps, result.warmup.steps) == expected


@pytest.mark.parametrize(
    ("n", "batch", "gpus", "drop"),
    [(10_000, 8, 2, False), (1001, 4, 3, False), (1001, 4, 3, True), (7, 2, 8, False)],
)
def test_batches_per_device_match_accelerate_sharding(
    n: int, batch: int, gpus: int, drop: bool, tmp_path: Path
) -> None:
    """With several GPUs the per-device batch count is accelerate's BatchSamplerShard length."""
    from accelerate.data_loader import BatchSamplerShard

    sampler = torch.utils.data.BatchSampler(range(n), batch_size=batch, drop_last=drop)
    shard = BatchSamplerShard(sampler, num_processes=gpus, process_index=0, even_batches=True)
    path = _write(
        tmp_path,
        f"per_device_train_batch_size: {batch}\ndataloader_drop_last: {str(drop).lower()}\n",
    )
    result = plan(load_config(path), samples=n, gpus=gpus)
    assert result.steps.batches_per_epoch == len(shard)


# --- Misconfigurations ------------------------------------------------------------------------
def test_warmup_longer_than_run_is_an_error(tmp_path: Path) -> None:
    """warmup_steps beyond the total is an error with a 10% recommendation."""
    path = _write(
        tmp_path,
        "finetuning_type: lora\nlearning_rate: 1e-4\nper_device_train_batch_size: 4\n"
        "gradient_accumulation_steps: 2\nnum_train_epochs: 1\nwarmup_steps: 500\n",
    )
    result = plan(load_config(path), samples=800)
    assert result.steps.total_steps == 100
    assert _codes(result)["warmup_longer_than_run"] == "error"
    assert result.exit_code == 1
    # 10% is 10, the 50-step minimum is more than 20% of the run: the 20% cap, 20.
    assert result.recommendations[0].suggested == 20


def test_both_warmup_settings_is_an_error(tmp_path: Path) -> None:
    """warmup_steps and warmup_ratio together: error naming warmup_steps as the one used."""
    path = _write(tmp_path, "stage: sft\nwarmup_steps: 30\nwarmup_ratio: 0.1\n")
    result = plan(load_config(path), samples=10_000)
    assert _codes(result)["warmup_both_set"] == "error"
    assert result.warmup.steps == 30 and result.warmup.setting == "warmup_steps"
    message = next(f.message for f in result.findings if f.code == "warmup_both_set")
    assert "the Trainer uses warmup_steps" in message


def test_guide_mistake3_lr_too_high_for_full_finetuning(tmp_path: Path) -> None:
    """70B full fine-tuning at 1e-4 with 10 warmup steps: LR error and too-short warmup."""
    path = _write(
        tmp_path,
        "model_name_or_path: meta-llama/Meta-Llama-3-70B-Instruct\nfinetuning_type: full\n"
        "learning_rate: 1e-4\nwarmup_steps: 10\nper_device_train_batch_size: 1\n"
        "gradient_accumulation_steps: 8\nnum_train_epochs: 2\n",
    )
    result = plan(load_config(path), samples=20_000)
    codes = _codes(result)
    assert codes["lr_out_of_range"] == "error"
    assert codes["warmup_too_short"] == "warning"
    assert result.model_size_b == 70.0
    lr = next(r for r in result.recommendations if r.parameter == "learning_rate")
    assert lr.suggested == 5e-6
    assert result.exit_code == 1


def test_constant_scheduler_ignores_warmup(tmp_path: Path) -> None:
    """The 'constant' schedule has no warmup phase: a configured warmup is an error."""
    path = _write(tmp_path, "stage: sft\nlr_scheduler_type: constant\nwarmup_steps: 100\n")
    result = plan(load_config(path), samples=50_000)
    assert _codes(result)["warmup_ignored"] == "error"
    assert any(r.suggested == "constant_with_warmup" for r in result.recommendations)


def test_a_schedule_free_optimizer_warms_up_by_itself(tmp_path: Path) -> None:
    """schedule_free_adamw takes warmup_steps itself and wants a constant scheduler: that is
    a 100-step warmup, not an ignored one; a scheduler that warms up too doubles the ramp."""
    from transformers import TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        optim="schedule_free_adamw",
        lr_scheduler_type="constant",
        warmup_steps=100,
        max_steps=1000,
        report_to=[],
    )
    path = _write(tmp_path, args.to_json_string(), "training_args.json")
    result = plan(load_config(path))
    assert (result.warmup.steps, result.warmup.share) == (100, 0.1)
    assert "warms up by itself" in result.warmup.rule
    assert "warmup_ignored" not in _codes(result)
    assert "double_warmup" not in _codes(result)
    assert result.exit_code == 0
    both = _write(
        tmp_path, "stage: sft\noptim: schedule_free_sgd\nwarmup_steps: 100\nmax_steps: 1000\n"
    )
    doubled = plan(load_config(both))  # the default scheduler, linear, warms up as well
    assert _codes(doubled)["double_warmup"] == "warning"
    assert any(r.suggested == "constant" for r in doubled.recommendations)
    # transformers 5 hands the optimizer warmup_steps as it is: a ratio is a fraction of a step.
    ratio = _write(
        tmp_path,
        "stage: sft\noptim: schedule_free_adamw\nlr_scheduler_type: constant\n"
        "warmup_steps: 0.1\nmax_steps: 1000\n",
    )
    by_ratio = plan(load_config(ratio))
    assert _codes(by_ratio)["optimizer_warmup_ratio"] == "warning"
    assert "10x the learning rate" in render_text(by_ratio)
    assert "warmup_ignored" not in _codes(by_ratio)  # the constant scheduler is right here
    assert any(
        r.parameter == "warmup_steps" and r.suggested == 100 for r in by_ratio.recommendations
    )
    # transformers 4's warmup_ratio never reaches the optimizer.
    old = _write(
        tmp_path,
        "stage: sft\noptim: schedule_free_sgd\nlr_scheduler_type: constant\n"
        "warmup_ratio: 0.05\nmax_steps: 1000\n",
    )
    by_old_ratio = plan(load_config(old))
    assert _codes(by_old_ratio)["optimizer_warmup_ratio"] == "warning"
    assert any(r.suggested == 50 for r in by_old_ratio.recommendations)
    # schedule_free_radam needs no warmup and gets none: the scheduler decides as usual.
    radam = _write(
        tmp_path,
        "stage: sft\noptim: schedule_free_radam\nlr_scheduler_type: constant\n"
        "warmup_steps: 100\nmax_steps: 1000\n",
    )
    assert _codes(plan(load_config(radam)))["warmup_ignored"] == "error"


@pytest.mark.parametrize("kind", ["reduce_lr_on_plateau", "greedy"])
def test_metric_driven_schedules_without_warmup_are_valid(tmp_path: Path, kind: str) -> None:
    """reduce_lr_on_plateau and greedy follow the eval metric: no formula, and no error."""
    path = _write(tmp_path, f"stage: sft\nlearning_rate: 1.0e-4\nlr_scheduler_type: {kind}\n")
    result = plan(load_config(path), samples=50_000)
    assert "scheduler_kwargs" not in _codes(result)
    assert "unknown_scheduler" not in _codes(result)
    assert result.exit_code == 0


def test_wsd_without_decay_steps_is_an_error(tmp_path: Path) -> None:
    """warmup_stable_decay without num_decay_steps would stop the Trainer: error."""
    path = _write(
        tmp_path, "stage: sft\nlr_scheduler_type: warmup_stable_decay\nwarmup_steps: 60\n"
    )
    result = plan(load_config(path), samples=50_000)
    assert _codes(result)["scheduler_kwargs"] == "error"


def test_guide_mistake2_short_warmup_recommends_the_guides_rule(tmp_path: Path) -> None:
    """5 warmup steps in a long run: too short; the fix is 10% of the run, at least 50 steps."""
    path = _write(
        tmp_path,
        "stage: sft\nlearning_rate: 1e-3\nwarmup_steps: 5\nper_device_train_batch_size: 4\n"
        "num_train_epochs: 1\n",
    )
    long_run = plan(load_config(path), samples=4000)  # 1000 steps
    assert _codes(long_run)["warmup_too_short"] == "warning"
    assert long_run.recommendations[0].suggested == 100
    short_run = plan(load_config(path), samples=1200)  # 300 steps: 10% is 30, 50 fits in 20%
    assert short_run.recommendations[0].suggested == 50
    share = next(c for c in short_run.checks if c.basis == "share")
    assert share.placement == "below"


@pytest.mark.parametrize("kind", ["constant", "reduce_lr_on_plateau"])
@pytest.mark.parametrize("setting", ["", "warmup_steps: 100\n", "warmup_ratio: 0.3\n"])
def test_schedules_without_a_warmup_phase_plan_0_steps_everywhere(
    tmp_path: Path, kind: str, setting: str
) -> None:
    """No warmup phase: 0 warmup steps whatever the config says, in every guide row and text."""
    path = _write(tmp_path, f"stage: sft\nlr_scheduler_type: {kind}\n{setting}")
    result = plan(load_config(path), samples=50_000, model_size=7.0)
    assert (result.warmup.steps, result.warmup.share) == (0, 0.0)
    assert ("no warmup phase" in result.warmup.rule) == bool(setting)
    assert {c.basis: c.value for c in result.checks if c.basis != "share"} == {
        "dataset": 0.0,
        "model": 0.0,
        "method": 0.0,
        "adam": 0.0,
    }
    assert "reaches its peak" not in render_text(result)


def test_drop_last_with_too_few_samples_is_an_error(tmp_path: Path) -> None:
    """Fewer samples than one batch with dataloader_drop_last means no step at all."""
    path = _write(tmp_path, "per_device_train_batch_size: 16\ndataloader_drop_last: true\n")
    result = plan(load_config(path), samples=20, gpus=2)
    assert result.steps.total_steps == 0
    assert _codes(result)["no_training_steps"] == "error"


def test_fractional_warmup_steps_are_truncated(tmp_path: Path) -> None:
    """warmup_steps 46.8 is cut to 46 by the Trainer, and the plan says so."""
    path = _write(tmp_path, "warmup_steps: 46.8\n")
    result = plan(load_config(path), samples=10_000)
    assert result.warmup.steps == 46
    assert _codes(result)["warmup_steps_truncated"] == "info"


def test_no_warmup_is_a_warning(tmp_path: Path) -> None:
    """A run with no warmup at all is warned about, not an error."""
    path = _write(tmp_path, "stage: sft\nlearning_rate: 1e-4\n")
    result = plan(load_config(path), samples=10_000)
    assert _codes(result)["no_warmup"] == "warning"
    assert result.exit_code == 0


def test_without_samples_total_is_unknown_and_formula_given(tmp_path: Path) -> None:
    """No --samples and no max_steps: a warning with the per-sample formula, exit code 0."""
    path = _write(
        tmp_path,
        "learning_rate: 5e-5\nper_device_train_batch_size: 8\ngradient_accumulation_steps: 4\n"
        "num_train_epochs: 3\nwarmup_steps: 0.1\n",
    )
    result = plan(load_config(path), gpus=2)
    assert result.steps.total_steps is None
    assert result.warmup.steps is None and result.warmup.share == pytest.approx(0.1)
    assert _codes(result)["total_steps_unknown"] == "warning"
    assert "ceil(3 x ceil(ceil(N / (8 x 2)) / 4))" in result.steps.formula
    assert result.exit_code == 0


def test_max_steps_overrides_epochs(tmp_path: Path) -> None:
    """max_steps > 0 wins over num_train_epochs, with or without the sample count."""
    path = _write(tmp_path, "max_steps: 1000\nnum_train_epochs: 3\nwarmup_steps: 0.05\n")
    for samples in (None, 10_000):
        result = plan(load_config(path), samples=samples)
        assert result.steps.total_steps == 1000
        assert result.warmup.steps == 50
        assert "overrides num_train_epochs" in result.steps.total_steps_rule


def test_samples_capped_by_max_samples_and_val_size(tmp_path: Path) -> None:
    """max_samples caps --samples; LLaMA-Factory's val_size is held out of training."""
    path = _write(tmp_path, "stage: sft\nmax_samples: 2000\nval_size: 0.1\n")
    result = plan(load_config(path), samples=5000)
    assert result.samples == 1800  # min(5000, 2000) - ceil(0.1 * 2000)
    result = plan(load_config(path), samples=1000)
    assert result.samples == 900


# --- Config reading -----------------------------------------------------------------------------
def test_training_arguments_json(tmp_path: Path) -> None:
    """A real TrainingArguments.to_json_string() file reads with the Trainer's own values."""
    from transformers import TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        learning_rate=2e-5,
        per_device_train_batch_size=16,
        gradient_accumulation_steps=2,
        num_train_epochs=2,
        warmup_steps=0.06,
        lr_scheduler_type="cosine",
        adam_beta2=0.98,
        report_to=[],
    )
    path = _write(tmp_path, args.to_json_string(), "training_args.json")
    cfg = load_config(path)
    assert cfg.source_format == "training_args"
    assert cfg.method is None
    assert (cfg.learning_rate, cfg.lr_scheduler_type, cfg.adam_beta2) == (2e-5, "cosine", 0.98)
    result = plan(cfg, samples=32_000)
    assert result.steps.total_steps == 2000
    assert result.warmup.steps == args.get_warmup_steps(2000) == 120
    adam = next(c for c in result.checks if c.basis == "adam")
    assert adam.high == pytest.approx(100.0)  # 2 / (1 - 0.98)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("learning_rate: 1e-4\nper_device_train_batch_size: [8\n", "bad.yaml"),
        ('{"learning_rate": 1e-4,', "bad.json"),
        ("- just\n- a list\n", "list.yaml"),
        ("learning_rate: fast\n", "word.yaml"),
        ("learning_rate: 1e-4\n", "train.toml"),
        ("gradient_accumulation_steps: 0\n", "zero.yaml"),
    ],
)
def test_bad_configs_raise_one_line_config_error(tmp_path: Path, text: str, name: str) -> None:
    """Broken syntax, wrong shapes, bad values and unknown extensions are one-line ConfigErrors."""
    path = _write(tmp_path, text, name)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "\n" not in str(err.value)
    assert (
        name in str(err.value)
        or "gradient_accumulation_steps" in str(err.value)
        or ("learning_rate" in str(err.value))
    )


def test_missing_config_is_a_config_error(tmp_path: Path) -> None:
    """A path that does not exist is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "billions"), [("7B", 7.0), ("0.5B", 0.5), ("70b", 70.0), ("350M", 0.35)]
)
def test_parse_model_size(text: str, billions: float) -> None:
    """Model sizes parse to billions of parameters."""
    assert parse_model_size(text) == pytest.approx(billions)


@pytest.mark.parametrize("text", ["seven", "7", "7G", "", "-3B"])
def test_parse_model_size_rejects_garbage(text: str) -> None:
    """Anything but a number with B or M is a ConfigError."""
    with pytest.raises(ConfigError):
        parse_model_size(text)


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("Qwen/Qwen2.5-7B-Instruct", 7.0),
        ("meta-llama/Llama-3.2-1B", 1.0),
        ("Qwen/Qwen3-30B-A3B", 30.0),
        ("google/gemma-2-2b-it", 2.0),
        ("microsoft/Phi-3-mini-4k-instruct", None),
        ("mistralai/Mixtral-8x7B-v0.1", None),
    ],
)
def test_model_size_from_name(tmp_path: Path, name: str, size: float | None) -> None:
    """The size token of a model name is read; names without one leave the size unknown."""
    path = _write(tmp_path, f"model_name_or_path: {name}\n")
    assert plan(load_config(path), samples=1000).model_size_b == size


def test_text_report_names_rules_and_numbers() -> None:
    """The text report shows the arithmetic and the rule used for every count."""
    text = render_text(_plan("guide_example.yaml", gpus=2))
    assert "effective batch  64 = 8 per device x 4 accumulation x 2 GPUs" in text
    assert "625 per device = ceil(10000 / (8 x 2))" in text
    assert "157 = ceil(625 / 4 accumulation) (transformers >= 4.52)" in text
    assert "471 = ceil(3 epochs x 157 steps per epoch)" in text
    assert "warmup_ratio 0.1: ceil(0.1 x 471) = 48" in text


def test_recommendation_rounds_like_the_trainer() -> None:
    """10% of 63 steps is ceil(6.3) = 7 (what ``warmup_steps: 0.1`` would give); the guide's
    50-step minimum does not fit under its 20% maximum, so the maximum, 12, and it says so."""
    result = _plan("case3_prototype.yaml")
    rec = result.recommendations[0]
    assert rec.suggested == 12
    assert "10% of 63 steps is 7; the guide's minimum of 50 steps is more than" in rec.reason


def test_text_escapes_control_characters_from_the_config(tmp_path: Path) -> None:
    """A scheduler name holding ESC and a newline is shown escaped: no forged line."""
    path = _write(tmp_path, 'stage: sft\nlr_scheduler_type: "cos\\e[2J\\nerror forged"\n')
    text = render_text(plan(load_config(path), samples=1000))
    assert "\x1b" not in text
    assert not [line for line in text.splitlines() if line.startswith("error")]
    assert "'cos\\x1b[2J\\nerror forged'" in text


# LLaMA-Factory's own examples/train_lora/qwen3_lora_dpo.yaml (its training keys).
_LF_DPO = """\
model_name_or_path: Qwen/Qwen3-4B-Instruct-2507
stage: dpo
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
pref_beta: 0.1
pref_loss: sigmoid
dataset: dpo_en_demo
template: qwen3_nothink
cutoff_len: 2048
max_samples: 1000
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 5.0e-6
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
"""


def test_dpo_config_is_judged_against_the_dpo_range(tmp_path: Path) -> None:
    """LLaMA-Factory's own DPO example (LR 5e-6) is no LR error; an SFT-sized LR in a DPO
    config is, against the DPO reference."""
    result = plan(load_config(_write(tmp_path, _LF_DPO)))
    assert result.config.stage == "dpo"
    assert "lr_out_of_range" not in _codes(result) and result.exit_code == 0
    high = plan(load_config(_write(tmp_path, _LF_DPO.replace("5.0e-6", "1.0e-4"))))
    (finding,) = [f for f in high.findings if f.code == "lr_out_of_range"]
    assert "stage dpo (lora)" in finding.message and "5e-6" in finding.message
    assert [r.suggested for r in high.recommendations if r.parameter == "learning_rate"] == [5e-6]


@pytest.mark.parametrize(
    ("stage", "lr", "error"),
    [
        ("kto", 5e-6, False),
        ("ppo", 1e-5, False),
        ("ppo", 1e-3, True),
        ("rm", 1e-4, False),
        ("pt", 1e-2, True),
    ],
)
def test_each_stage_has_its_range(tmp_path: Path, stage: str, lr: float, error: bool) -> None:
    text = _LF_DPO.replace("stage: dpo", f"stage: {stage}").replace("5.0e-6", f"{lr:e}")
    result = plan(load_config(_write(tmp_path, text)))
    assert ("lr_out_of_range" in _codes(result)) is error


def test_unknown_stage_gets_no_lr_verdict(tmp_path: Path) -> None:
    text = _LF_DPO.replace("stage: dpo", "stage: grpo").replace("5.0e-6", "1.0")
    result = plan(load_config(_write(tmp_path, text)))
    codes = _codes(result)
    assert "lr_out_of_range" not in codes and codes["lr_not_judged"] == "info"
    assert not [r for r in result.recommendations if r.parameter == "learning_rate"]
