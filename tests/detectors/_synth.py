"""Seeded synthetic training curves that come with their true events.

Each generator returns a :class:`Synth`: ``steps`` (training steps, logged every ``every``),
``values`` and ``events`` (the training steps where the planted anomaly starts). A logged HF
loss is the mean over ``every`` per-step losses, so ``averaged=True`` simulates that smoothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Synth:
    steps: np.ndarray
    values: np.ndarray
    events: tuple[int, ...] = ()
    info: dict = field(default_factory=dict)


def _per_step(
    n_steps: int, start: float, floor: float, tau: float, noise: float, rng
) -> np.ndarray:
    t = np.arange(1, n_steps + 1, dtype=np.float64)
    clean = floor + (start - floor) * np.exp(-t / tau)
    return clean * np.exp(rng.normal(0.0, noise, n_steps))


def _log_every(per_step: np.ndarray, every: int, averaged: bool) -> tuple[np.ndarray, np.ndarray]:
    n = per_step.size // every
    blocks = per_step[: n * every].reshape(n, every)
    values = blocks.mean(axis=1) if averaged else blocks[:, -1]
    steps = (np.arange(1, n + 1) * every).astype(np.int64)
    return steps, values


def healthy(
    n_steps: int = 1000,
    *,
    every: int = 10,
    start: float = 4.0,
    floor: float = 1.5,
    tau: float = 150.0,
    noise: float = 0.05,
    averaged: bool = True,
    seed: int = 0,
) -> Synth:
    """An exponentially falling loss with multiplicative noise; no events."""
    rng = np.random.default_rng(seed)
    s, v = _log_every(_per_step(n_steps, start, floor, tau, noise, rng), every, averaged)
    return Synth(s, v)


def with_spike(
    at_step: int = 600,
    factor: float = 6.0,
    *,
    lasting: int = 1,
    n_steps: int = 1000,
    every: int = 1,
    seed: int = 1,
    noise: float = 0.03,
) -> Synth:
    """A healthy per-step loss multiplied by ``factor`` for ``lasting`` steps from ``at_step``."""
    rng = np.random.default_rng(seed)
    per = _per_step(n_steps, 4.0, 1.5, 150.0, noise, rng)
    per[at_step - 1 : at_step - 1 + lasting] *= factor
    s, v = _log_every(per, every, averaged=every > 1)
    first = int(s[np.searchsorted(s, at_step)])
    return Synth(s, v, (first,), {"factor": factor})


def with_divergence(
    at_step: int = 500,
    rate: float = 0.01,
    *,
    n_steps: int = 1000,
    every: int = 10,
    seed: int = 2,
    noise: float = 0.03,
) -> Synth:
    """A healthy loss that grows exponentially (``rate`` per step) from ``at_step`` on."""
    rng = np.random.default_rng(seed)
    per = _per_step(n_steps, 4.0, 1.5, 100.0, noise, rng)
    t = np.arange(1, n_steps + 1)
    per = per * np.exp(rate * np.clip(t - at_step, 0, None))
    s, v = _log_every(per, every, averaged=True)
    return Synth(s, v, (at_step,))


def with_nans(
    at: tuple[int, ...] = (300,),
    *,
    n_steps: int = 600,
    every: int = 10,
    value: float = math.nan,
    until_end: bool = False,
    seed: int = 3,
) -> Synth:
    """A healthy logged series with non-finite values at the logged steps ``at``."""
    syn = healthy(n_steps, every=every, seed=seed)
    v = syn.values.copy()
    for step in at:
        i = int(np.searchsorted(syn.steps, step))
        if until_end:
            v[i:] = value
        else:
            v[i] = value
    return Synth(syn.steps, v, tuple(int(a) for a in at))


def flat_then_fall(
    flat_until: int = 300,
    *,
    n_steps: int = 1000,
    every: int = 10,
    start: float = 5.0,
    seed: int = 4,
    noise: float = 0.01,
) -> Synth:
    """A loss that stays at ``start`` until ``flat_until``, then falls exponentially."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, n_steps + 1, dtype=np.float64)
    clean = np.where(t < flat_until, start, 1.0 + (start - 1.0) * np.exp(-(t - flat_until) / 80))
    per = clean * np.exp(rng.normal(0.0, noise, n_steps))
    s, v = _log_every(per, every, averaged=True)
    return Synth(s, v, (flat_until,))


def lr_trace(
    *,
    peak: float = 1e-4,
    warmup: int = 100,
    total: int = 1000,
    decay: str = "linear",
    every: int = 10,
    until: int | None = None,
    digits: int | None = None,
) -> Synth:
    """An HF-style LR trace: linear warmup from 0, then ``decay``; logged every ``every`` steps.

    ``until`` stops logging early (a run in progress); ``digits`` rounds to that many decimal
    places (older LLaMA-Factory logs). ``info`` holds the true warmup/total/peak.
    """
    last = until or total
    steps = np.arange(every, last + 1, every, dtype=np.int64)
    lrs = []
    for s in steps.tolist():
        if s < warmup:
            lr = peak * s / max(1, warmup)
        else:
            p = (s - warmup) / max(1, total - warmup)
            if decay == "linear":
                lr = peak * max(0.0, 1 - p)
            elif decay == "cosine":
                lr = peak * 0.5 * (1 + math.cos(math.pi * min(p, 1.0)))
            elif decay == "constant":
                lr = peak
            else:
                raise ValueError(decay)
        lrs.append(lr)
    v = np.asarray(lrs)
    if digits is not None:
        v = np.round(v, digits)
    return Synth(steps, v, (), {"warmup": warmup, "total": total, "peak": peak, "decay": decay})
