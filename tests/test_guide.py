"""The warmup rules of thumb and their step arithmetic."""

from __future__ import annotations

import pytest

from warmup_monitor import guide


def test_step_arithmetic_of_the_worked_example() -> None:
    """10,000 samples, batch 8 on 2 devices, accumulation 4, 3 epochs -> 156 steps/epoch, 468."""
    assert guide.steps_per_epoch(10_000, 8, 4, num_devices=2) == 157
    assert guide.total_steps(10_000, 8, 4, 3, num_devices=2) == 471
    # The guide's own numbers: the rounding of transformers before 4.52.
    assert guide.steps_per_epoch(10_000, 8, 4, num_devices=2, rounding="floor") == 156
    assert guide.total_steps(10_000, 8, 4, 3, num_devices=2, rounding="floor") == 468
    assert guide.steps_per_epoch(10_000, 8, 4, num_devices=2, drop_last=True) == 157


def test_batches_per_epoch_keeps_or_drops_the_last_partial_batch() -> None:
    """A partial last batch counts unless dropped; dropping it may leave no batch at all."""
    assert guide.batches_per_epoch(10_000, 8, num_devices=2) == 625
    assert guide.batches_per_epoch(10_001, 8, num_devices=2) == 626
    assert guide.batches_per_epoch(10_001, 8, num_devices=2, drop_last=True) == 625
    assert guide.batches_per_epoch(20, 16, num_devices=2, drop_last=True) == 0


@pytest.mark.parametrize(
    ("total", "kwargs", "steps", "reason_part"),
    [
        (3125, {}, 312, "10% of 3125 total steps"),
        (468, {}, 50, "raised to the usual minimum of 50 steps"),
        (100, {}, 20, "capped at 20% of the run (20 steps)"),
        (48_470, {"finetuning_type": "full"}, 1000, "high end of the full fine-tuning range"),
        (1000, {"finetuning_type": "qlora"}, 100, "10% of 1000 total steps"),
        (600, {"finetuning_type": "qlora"}, 100, "low end of the QLoRA range (100-300 steps)"),
        (20_000, {"model_size_b": 70}, 1000, "high end of the > 10B parameters range"),
    ],
)
def test_recommended_warmup(total: int, kwargs: dict, steps: int, reason_part: str) -> None:
    """10% of the run, at least 50 steps, at most 20%, clamped to the method/model ranges."""
    got, reason = guide.recommended_warmup(total, **kwargs)
    assert got == steps
    assert reason_part in reason


@pytest.mark.parametrize(
    ("config", "total", "expected"),
    [
        ({"warmup_steps": 200}, 1000, 200),
        ({"warmup_ratio": 0.1}, 468, 47),
        ({"warmup_steps": 0.05}, 1000, 50),  # transformers 5 reads a value below 1 as a ratio
        ({"warmup_steps": 0, "warmup_ratio": 0.0}, 1000, 0),
        ({"warmup_ratio": 0.1}, None, None),
        ({}, 1000, None),
    ],
)
def test_configured_warmup(config: dict, total: int | None, expected: int | None) -> None:
    """The warmup a config asks for, resolved the way the HF Trainer does."""
    assert guide.configured_warmup(config, total) == expected


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("Qwen/Qwen2.5-7B-Instruct", 7.0),
        ("meta-llama/Meta-Llama-3-70B-Instruct", 70.0),
        ("unsloth/qwen2.5-0.5b-instruct-unsloth-bnb-4bit", 0.5),
        ("EleutherAI/pythia-160m", 0.16),
        ("gpt2", 0.124),
        ("./local-model", None),
        (None, None),
    ],
)
def test_model_size_from_name(name: str | None, size: float | None) -> None:
    """Billions of parameters are read from the model name where it says them."""
    got = guide.model_size_from_name(name)
    assert got == (pytest.approx(size) if size is not None else None)


@pytest.mark.parametrize(
    ("kind", "bits", "expected"),
    [
        ("lora", None, "lora"),
        ("lora", 4, "qlora"),
        ("QLoRA", None, "qlora"),
        ("full", None, "full"),
        ("freeze", None, None),
        (None, None, None),
    ],
)
def test_method_key(kind: str | None, bits: int | None, expected: str | None) -> None:
    """Fine-tuning method names map to the guide's LoRA/QLoRA/full rows."""
    assert guide.method_key(kind, bits) == expected


def test_lower_learning_rate() -> None:
    """A third of the current LR rounded down to a round number, and the reason says the
    factor that results; the typical LR is quoted when far lower."""
    assert guide.lower_learning_rate(1e-3) == (
        pytest.approx(3e-4),
        "0.3 x 0.001: a third (0.000333) rounded down to a round number",
    )
    lr, reason = guide.lower_learning_rate(1e-4, finetuning_type="full")
    assert lr == pytest.approx(3e-5)
    assert reason.endswith("; full fine-tuning typically uses about 5e-06")
    assert guide.nice_number(3.7e-4) == pytest.approx(3e-4)
    assert guide.nice_number(9.9e-5) == pytest.approx(8e-5)


@pytest.mark.parametrize(
    ("optimizer", "quoted"),
    [
        (None, True),  # the Trainer's default is AdamW
        ("adamw_torch", True),
        ("paged_adamw_8bit", True),
        ("nadam", True),
        ("sgd", False),
        ("lion_32bit", False),
        ("adafactor", False),
    ],
)
def test_the_typical_lr_is_quoted_for_the_adam_family_only(
    optimizer: str | None, quoted: bool
) -> None:
    """The guide's typical LRs are AdamW's: an SGD LR of 1.0 is not "far above 5e-06"."""
    lr, reason = guide.lower_learning_rate(1.0, finetuning_type="full", optimizer=optimizer)
    assert lr == pytest.approx(0.3)
    assert ("typically uses" in reason) is quoted


@pytest.mark.parametrize(
    ("current", "lower", "reason"),
    [
        (1.2, 0.4, "a third of 1.2"),
        (0.05, 0.015, "0.3 x 0.05: a third (0.0167) rounded down to a round number"),
        (9e-4, 3e-4, "a third of 0.0009"),
    ],
)
def test_lower_learning_rate_says_the_factor(current: float, lower: float, reason: str) -> None:
    """1.2 -> 0.3 was called "about a third": the LR is now a third, or the factor is said."""
    got, why = guide.lower_learning_rate(current)
    assert got == pytest.approx(lower) and why == reason
    assert 0.25 <= got / current <= 1 / 3 + 1e-9


def test_planned_total_steps() -> None:
    """Only a positive ``max_steps`` states the planned total."""
    assert guide.planned_total_steps({"max_steps": 300}) == 300
    assert guide.planned_total_steps({"max_steps": -1}) is None
    assert guide.planned_total_steps({}) is None


@pytest.mark.parametrize(
    ("rows", "value", "label"),
    [
        (guide.MODEL_RANGES, 0.5, "< 1B parameters"),
        (guide.MODEL_RANGES, 7.0, "1-10B parameters"),
        (guide.MODEL_RANGES, 10.0, "1-10B parameters"),
        (guide.MODEL_RANGES, 70.0, "> 10B parameters"),
        (guide.DATASET_RANGES, 999, "< 1,000 samples"),
        (guide.DATASET_RANGES, 1000, "1,000-10,000 samples"),
        (guide.DATASET_RANGES, 50_000, "> 10,000 samples"),
        (guide.DATASET_RANGES, None, None),
    ],
)
def test_range_for_picks_the_first_row_that_holds_the_value(
    rows: tuple[guide.GuideRange, ...], value: float | None, label: str | None
) -> None:
    """Rows are ordered by their upper bound; an unknown value has no row."""
    row = guide.range_for(rows, value)
    assert (row.label if row is not None else None) == label


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"optim": "schedule_free_adamw", "warmup_steps": 100}, 100),
        ({"optim": "schedule_free_sgd", "warmup_steps": 40.0}, 40),
        ({"optim": "schedule_free_radam", "warmup_steps": 100}, None),  # needs none
        ({"optim": "adamw_torch", "warmup_steps": 100}, None),  # the scheduler's warmup
        ({"optim": "schedule_free_adamw", "warmup_steps": 0.1}, None),  # a ratio: no steps
        ({"optim": "schedule_free_adamw", "warmup_steps": "many"}, None),
        ({"optim": "schedule_free_adamw"}, None),
        ({}, None),
    ],
)
def test_optimizer_warmup_steps(config: dict, expected: int | None) -> None:
    """Only the optimizers that warm up by themselves, over a whole number of steps."""
    assert guide.optimizer_warmup_steps(config) == expected
