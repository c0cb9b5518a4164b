"""Canonical metric names and the tags real writers use for them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["CANONICAL_METRICS", "TAG_CANDIDATES", "resolve_metrics"]

CANONICAL_METRICS: tuple[str, ...] = ("loss", "learning_rate", "grad_norm", "eval_loss", "epoch")

# Ordered by preference: the first candidate present in a run wins. Matching ignores case.
TAG_CANDIDATES: dict[str, tuple[str, ...]] = {
    "loss": (
        "train/loss",  # HF Trainer (TensorBoard/SwanLab callbacks), LLaMA-Factory
        "loss",  # trainer_state.json, trainer_log.jsonl, Keras batch logs
        "train_loss",
        "train/train_loss",
        "train_loss_step",  # Lightning on_step + on_epoch
        "Loss/train",  # torch tutorial convention
        "loss/train",
        "Train/Loss",
        "training_loss",
        "train/loss_step",
        "batch_loss",
        "train_loss_epoch",
        "epoch_loss",  # Keras TensorBoard callback
        "lm loss",  # Megatron-LM
        "train/lm_loss",  # GPT-NeoX and many custom loops
        "lm_loss",
        "train/CrossEntropyLoss",  # OLMo
        "reduced_train_loss",  # NeMo
    ),
    "learning_rate": (
        "train/learning_rate",
        "learning_rate",
        "lr",
        "train/lr",
        "learning-rate",
        "LearningRate",
        "lr-AdamW",  # Lightning LearningRateMonitor
        "lr-Adam",
        "lr-SGD",
        "optimizer/lr",
        "lr/group_0",
        "lr-AdamW/pg1",
        "epoch_learning_rate",
    ),
    "grad_norm": (
        "train/grad_norm",
        "grad_norm",
        "train/gradient_norm",
        "gradient_norm",
        "grad_norm/total",
        "optim/grad_norm",
        "grad_norm_2.0_norm_total",  # Lightning grad-norm tracking
        "train/grad_norm_total",
        "grad-norm",  # Megatron-LM
        "optim/total_grad_norm",  # OLMo
        "gnorm",  # fairseq
        "train/gnorm",
    ),
    "eval_loss": (
        "eval/loss",
        "eval_loss",
        "val_loss",
        "validation_loss",
        "val/loss",
        "valid/loss",
        "Loss/val",
        "loss/val",
        "Loss/validation",
        "Validation/Loss",
        "epoch_val_loss",
        "test/loss",
        "lm loss validation",  # Megatron-LM
        "val_loss_epoch",
    ),
    "epoch": ("train/epoch", "epoch", "Epoch"),
}

_LR_PATTERN = re.compile(r"(^|[/_\-.])(lr|learning[_\-]?rate)([/_\-.]|$)", re.IGNORECASE)
# An LR monitor also logs each group's momentum or betas beside its LR ("lr-SGD-momentum").
_NOT_AN_LR = re.compile(r"momentum|beta", re.IGNORECASE)
_GROUP_INDEX = re.compile(r"^(.*?)(\d+)$")


def _first_group(tags: list[str]) -> str | None:
    """One LR among several tags that name param groups by a trailing index (``lr-SGD/pg1``,
    ``lr-SGD/pg2``; ``lr/group_0``, ``lr/group_1``): the lowest, the first group's. ``None``
    when the tags are not just the groups of one LR."""
    found = [_GROUP_INDEX.match(t) for t in tags]
    if not all(found) or len({m.group(1) for m in found if m}) != 1:
        return None
    return min((m for m in found if m), key=lambda m: int(m.group(2))).group(0)


def resolve_metrics(
    tags: Iterable[str], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Map canonical metric names to the tags present in a run.

    ``overrides`` (``{"loss": "my/tag"}``) win over the built-in candidates; an override that
    names a tag absent from ``tags`` is kept so that reading it gives a clear error listing the
    available tags. Canonical names with no matching tag are absent from the result.
    """
    present = list(tags)
    by_lower: dict[str, str] = {}
    for tag in present:
        by_lower.setdefault(tag.lower(), tag)
    result: dict[str, str] = {}
    for name in CANONICAL_METRICS:
        for candidate in TAG_CANDIDATES[name]:
            tag = by_lower.get(candidate.lower())
            if tag is not None:
                result[name] = tag
                break
    if "learning_rate" not in result:
        # LR monitors name the tag after the optimizer or param group; one match is unambiguous,
        # and among the groups of one LR the first group's is the run's LR.
        lr_tags = [t for t in present if _LR_PATTERN.search(t) and not _NOT_AN_LR.search(t)]
        pick = lr_tags[0] if len(lr_tags) == 1 else _first_group(lr_tags)
        if pick is not None:
            result["learning_rate"] = pick
    if overrides:
        result.update(overrides)
    return result
