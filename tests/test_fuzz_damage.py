"""Fuzz: real log files damaged byte by byte never crash, hang or silently lose points.

For each format (torch and tensorboardX event files, a SwanLab offline run, the HF Trainer's
``trainer_state.json``, LLaMA-Factory's ``trainer_log.jsonl``, Lightning's ``metrics.csv``)
hypothesis draws a damage — a flipped bit, overwritten, inserted, deleted or duplicated bytes, a
truncation, appended garbage, a zeroed tail, with random or hostile payloads (a byte-order mark,
huge integers, deep nesting, quotes, NULs) — and :func:`damage.check` asserts that no exception
but a one-line error escapes, that each input is read within a deadline — whole, and appended
in three writes with a poll after each, as ``watch`` follows it — that every point written
before the damage is read both ways and that any other missing point comes with a warning.

Bounded for CI (a few seconds per format); ``WARMUP_MONITOR_FUZZ_EXAMPLES=2000`` explores more.
``benchmarks/bench_fuzz.py`` runs the same check over a seeded sweep and prints the counts.
"""

from __future__ import annotations

import os

import pytest
from damage import FORMATS, KINDS, PAYLOADS, Corpus, build_corpus, check, damage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("WARMUP_MONITOR_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the per-input deadline is check()'s own, counted as a hang
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Corpus]:
    for module in ("torch", "tensorboardX", "swanlab", "transformers"):
        pytest.importorskip(module)
    return build_corpus(tmp_path_factory.mktemp("fuzz_corpus"))


payloads = st.one_of(st.sampled_from(PAYLOADS), st.binary(min_size=1, max_size=32))


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_intact_file_reads_whole(corpus: dict[str, Corpus], fmt: str) -> None:
    """The ground truth: the intact file reads every point, with nothing to warn about."""
    c = corpus[fmt]
    assert len(c.points) >= 60
    outcome = check(c, damage(c.data, "append", 0, 1, b""))
    assert outcome.verdict == "ok" and outcome.missing == 0, outcome


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(
    kind=st.sampled_from(KINDS),
    at=st.integers(min_value=0, max_value=1 << 20),
    size=st.integers(min_value=1, max_value=64),
    payload=payloads,
)
def test_damaged_files_never_crash_hang_or_drop_silently(
    corpus: dict[str, Corpus], fmt: str, kind: str, at: int, size: int, payload: bytes
) -> None:
    c = corpus[fmt]
    outcome = check(c, damage(c.data, kind, at, size, payload))
    assert outcome.verdict == "ok", outcome.detail


def test_damage_kinds_touch_what_they_say() -> None:
    data = bytes(range(100))
    assert damage(data, "truncate", 40, 1, b"").data == data[:40]
    assert damage(data, "insert", 10, 1, b"xy").data == data[:10] + b"xy" + data[10:]
    assert damage(data, "delete", 10, 5, b"").data == data[:10] + data[15:]
    flipped = damage(data, "flip", 3, 2, b"")
    assert flipped.data[3] == data[3] ^ 4 and flipped.first == 3
    dup = damage(data, "duplicate", 10, 4, b"")
    assert dup.data == data[:14] + data[10:] and dup.first == 10


def test_a_damaged_swanlab_file_followed_live_is_not_restarted(corpus: dict[str, Corpus]) -> None:
    """A damaged chunk skips to the next block, past the end of a file still being written: that
    offset beyond the size is the skip, not a file that shrank and must be read again."""
    c = corpus["swanlab"]
    outcomes = [check(c, damage(c.data, "flip", at, 3, b"")) for at in range(1000, 6000, 250)]
    assert [o.detail for o in outcomes if o.verdict != "ok"] == []
