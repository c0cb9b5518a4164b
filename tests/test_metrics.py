"""Which logged tag is the loss, the LR, the grad norm: the writers' names and LR monitors'."""

from __future__ import annotations

import pytest

from warmup_monitor.metrics import resolve_metrics


@pytest.mark.parametrize(
    ("tags", "lr"),
    [
        (["train/loss", "train/learning_rate"], "train/learning_rate"),
        (["loss", "lr-SGD"], "lr-SGD"),  # one LR monitor tag
        (["loss", "optimizer/learning_rate"], "optimizer/learning_rate"),
        # The groups of one LR: the first group's (by number, not by text: pg2 before pg10).
        (["loss", "lr-SGD/pg2", "lr-SGD/pg10", "lr-SGD/pg1"], "lr-SGD/pg1"),
        (["loss", "lr/group_1", "lr/group_0"], "lr/group_0"),
        # An LR monitor's momentum columns are not LRs.
        (["loss", "lr-SGD/pg1", "lr-SGD/pg1-momentum"], "lr-SGD/pg1"),
        (["loss", "lr-Adam/pg1", "lr-Adam/pg2", "lr-Adam/pg1-beta1"], "lr-Adam/pg1"),
        # Two different LRs: ambiguous, none is taken.
        (["loss", "lr_encoder", "lr_decoder"], None),
        (["loss", "lr-SGD/pg1", "other_lr_2"], None),
    ],
)
def test_the_lr_tag(tags: list[str], lr: str | None) -> None:
    assert resolve_metrics(tags).get("learning_rate") == lr


def test_an_override_wins() -> None:
    assert resolve_metrics(["a", "lr"], {"learning_rate": "a"})["learning_rate"] == "a"
