"""Helpers shared by the detectors: input cleaning, parameter validation, robust statistics."""

from __future__ import annotations

import bisect
import contextlib
import functools
import math
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

import numpy as np

# 1.4826 * MAD estimates the standard deviation of normally distributed data.
MAD_TO_SIGMA = 1.4826
# Log-scale comparisons at an exact tie (a value exactly twice its median when the bar is x2)
# must not depend on the loss's units: log(2 * 41) - log(41) and log(2) differ in the last
# bits. Ties resolve as "at the bar"; 1e-12 in log units is a relative 1e-12 of the loss (and
# the same relative margin serves the comparisons of differences in the loss's own units).
LOG_TIE = 1e-12


F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# Results computed inside :func:`shared_work`, keyed by the identity of the input arrays.
_SHARED: ContextVar[dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] | None] = ContextVar(
    "detectors_shared_work", default=None
)


@contextlib.contextmanager
def shared_work() -> Iterator[None]:
    """Let the detectors called inside this block share their cleaned series and medians.

    Several detectors run on the same loss: each cleans it, moves it to log scale and takes
    trailing medians of it. Inside the block, work done on the same array objects is done once
    and shared (the results are read-only arrays). The arrays passed in must not change while
    the block runs. Outside the block nothing is kept.
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(what: Any, inputs: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """``compute()``, or its earlier result for the same ``inputs`` inside :func:`shared_work`."""
    cache = _SHARED.get()
    if cache is None:
        return compute()
    key = (what, *map(id, inputs))
    hit = cache.get(key)
    if hit is not None:
        return hit[1]  # type: ignore[no-any-return]
    result = compute()
    for part in result if isinstance(result, tuple) else (result,):
        if isinstance(part, np.ndarray):
            part.flags.writeable = False
    # Keeping the inputs alive keeps their ids from being reused by other arrays.
    cache[key] = (inputs, result)
    return result


def quiet(func: F) -> F:
    """Run a detector with numpy's floating-point warnings off.

    Detectors accept any float array: overflow or NaN arithmetic on absurd inputs is expected
    and handled by the thresholds (NaN compares false), so it must not spam the user's console.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def as_series(steps: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` as int64/float64 arrays sorted by step, one value per step.

    Where a step appears more than once the value written last wins (a resumed run).
    Values keep NaN/±Inf; steps that are not finite numbers are dropped.
    """
    s = np.asarray(steps, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if s.shape != v.shape:
        raise ValueError(
            f"steps and values must have the same length. Got {s.shape[0]} steps "
            f"and {v.shape[0]} values instead."
        )
    keep = np.isfinite(s)
    if not keep.all():
        s, v = s[keep], v[keep]
    si = s.astype(np.int64)
    if si.size > 1 and not np.all(si[1:] > si[:-1]):
        # Stable sort keeps write order among equal steps; keep the last of each step.
        order = np.argsort(si, kind="stable")
        si, v = si[order], v[order]
        last = np.ones(si.size, dtype=bool)
        last[:-1] = si[1:] != si[:-1]
        si, v = si[last], v[last]
    return si, v


def finite_series(steps: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`as_series` without the points whose value is NaN or ±Inf."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        s, v = as_series(steps, values)
        finite = np.isfinite(v)
        return s[finite], v[finite]

    return _shared("finite_series", (steps, values), compute)


def check_int(owner: str, name: str, value: Any, low: int, high: float = math.inf) -> None:
    """Raise ``ValueError`` unless ``value`` is an int in ``[low, high]``."""
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if not ok or not (low <= value <= high):
        raise ValueError(
            f"The '{name}' parameter of {owner} must be an int in the range "
            f"{_range(low, high, False, False)}. Got {value!r} instead."
        )


def check_float(
    owner: str,
    name: str,
    value: Any,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite real number in the given range."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if ok:
        x = float(value)
        ok = (
            math.isfinite(x)
            and (x > low if low_open else x >= low)
            and (x < high if high_open else x <= high)
        )
    if not ok:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be a float in the range "
            f"{_range(low, high, low_open, high_open)}. Got {value!r} instead."
        )


def check_optional_int(owner: str, name: str, value: Any, low: int) -> None:
    """Like :func:`check_int` but ``None`` is allowed."""
    if value is not None:
        check_int(owner, name, value, low)


def _range(low: float, high: float, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or math.isinf(low) else "["
    right = ")" if high_open or math.isinf(high) else "]"
    return f"{left}{_fmt_bound(low)}, {_fmt_bound(high)}{right}"


def _fmt_bound(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` index pairs (inclusive) of consecutive ``True`` stretches."""
    if not mask.any():
        return []
    m = np.concatenate(([False], mask, [False])).astype(np.int8)
    d = np.diff(m)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def median_spacing(steps: np.ndarray) -> float:
    """The typical number of training steps between two logged points (1.0 when unknown)."""
    if steps.size < 2:
        return 1.0
    d = np.diff(steps)
    d = d[d > 0]
    if d.size == 0:
        return 1.0
    return float(np.median(d))


def steps_per_value(averaged_over: int | None, steps: np.ndarray) -> float:
    """Training steps each logged value stands for: ``averaged_over`` when known (a Trainer's
    ``logging_steps``: each loss is the mean of that many steps), else the median spacing."""
    return float(averaged_over) if averaged_over is not None else median_spacing(steps)


def first_below(x: np.ndarray, start: int, bar: float, offset: float = 0.0) -> int | None:
    """The first index ``i >= start`` where ``x[i] - offset >= bar`` does not hold (a NaN
    does not), or ``None``. Looked at in growing chunks, so the cost follows the distance to
    that index, not the length of ``x``."""
    i, chunk = start, 64
    while i < x.size:
        with np.errstate(invalid="ignore"):
            ok = x[i : i + chunk] - offset >= bar
        if not ok.all():
            return i + int(np.argmin(ok))
        i += ok.size
        chunk *= 2
    return None


def running_min_before(x: np.ndarray) -> np.ndarray:
    """For each index ``i``, the minimum of ``x[:i]`` (``inf`` for the first)."""
    return np.concatenate(([np.inf], np.minimum.accumulate(x)[:-1]))


def to_scale(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Values on the scale the detectors compare them: ``log`` when the series is positive.

    Log space makes ratios additive, so thresholds do not depend on the loss's units. A few
    exact zeros (a tiny loss rounded to 4 decimals by the logger) are lifted to half the smallest
    positive value; series with negative values or mostly zeros stay linear (``False``).
    """
    return _shared("to_scale", (values,), lambda: _to_scale(values))


def _to_scale(values: np.ndarray) -> tuple[np.ndarray, bool]:
    finite = values[np.isfinite(values)]
    if finite.size == 0 or np.any(finite < 0):
        return values.astype(np.float64, copy=True), False
    pos = finite > 0
    if not pos.all():
        if pos.mean() < 0.9:
            return values.astype(np.float64, copy=True), False
        floor = float(finite[pos].min()) / 2.0
        values = np.where(values == 0.0, floor, values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(values), True


def trailing_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median of the last ``window`` values up to and including each point.

    Even windows are widened by one so the median is a single middle value. The first
    ``window - 1`` points use the values available so far. ``x`` must be finite.
    """
    key = ("trailing_median", max(1, window | 1))
    return _shared(key, (x,), lambda: _trailing_median(x, window))


def _trailing_median(x: np.ndarray, window: int) -> np.ndarray:
    n = x.size
    if n == 0:
        return x.astype(np.float64, copy=True)
    w = max(1, window | 1)
    x = x.astype(np.float64, copy=False)
    if w == 1:
        return x.copy()
    if w >= n:
        return _prefix_medians(x, n)
    # Imported here: scipy takes longer to import than most diagnoses take to run.
    from scipy.ndimage import median_filter

    # A trailing window is a centred one shifted by half its width (C speed, O(n * w)).
    out = median_filter(x, size=w, origin=(w - 1) // 2, mode="nearest")
    out[: w - 1] = _prefix_medians(x, w - 1)
    return out


def _prefix_medians(x: np.ndarray, m: int) -> np.ndarray:
    """Medians of ``x[:1], x[:2], … x[:m]`` (insertion into a sorted list: cheap for small m)."""
    out = np.empty(m)
    seen: list[float] = []
    for i, value in enumerate(x[:m].tolist()):
        bisect.insort(seen, value)
        h = (i + 1) // 2
        out[i] = seen[h] if i % 2 == 0 else (seen[h - 1] + seen[h]) / 2.0
    return out


def preceding_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median of the ``window`` values *before* each point (NaN for the first point)."""
    key = ("preceding_median", max(1, window | 1))
    return _shared(key, (x,), lambda: _preceding_median(x, window))


def _preceding_median(x: np.ndarray, window: int) -> np.ndarray:
    n = x.size
    out = np.full(n, np.nan)
    if n < 2:
        return out
    out[1:] = _trailing_median(x[:-1], window)
    return out


def robust_noise(x: np.ndarray) -> float:
    """Robust standard deviation of point-to-point noise, from second differences.

    Differencing twice removes the trend and most of the curvature of a falling loss, which
    would otherwise inflate the estimate; for white noise ``var(d2) = 6 sigma^2``. NaN for
    fewer than 4 finite values.
    """
    f = x[np.isfinite(x)]
    if f.size < 4:
        return math.nan
    d2 = np.diff(f, 2)
    return float(MAD_TO_SIGMA * np.median(np.abs(d2 - np.median(d2))) / math.sqrt(6.0))


def exp_(x: float) -> float:
    """``exp`` that saturates to ``inf`` instead of raising on overflow."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def clean_float(x: float | None) -> float | None:
    """A JSON-friendly float: ``None`` for missing values, plain ``float`` otherwise."""
    if x is None:
        return None
    return float(x)


def fmt(x: float) -> str:
    """A short human number for messages (4 significant digits)."""
    if x is None:
        return "n/a"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"


def fmt_ratio(x: float) -> str:
    """A ratio for messages: two decimals (``1.54``), whole from 100 (``1042``), then 3 digits.

    A blow-up's ratio can be 1e13; its last digits say nothing and make the line unreadable.
    """
    if not math.isfinite(x):
        return str(x)
    if abs(x) < 100:
        return f"{x:.2f}"
    return f"{x:.0f}" if abs(x) < 1e5 else f"{x:.3g}"
