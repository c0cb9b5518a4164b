"""The sweep corpus: its labels are what the labelling rules give, and the rules' structure.

The labels are computed by ``benchmarks/sweeps/label.py`` from each run's ``truth.json.gz``; no
label may be edited by hand or to fit the diagnosis, so the stored ``labels.json`` must be
exactly what the script computes from the stored runs.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest

SWEEPS = Path(__file__).resolve().parents[1] / "benchmarks" / "sweeps"
LABELS = SWEEPS / "labels.json"
pytestmark = pytest.mark.skipif(not LABELS.is_file(), reason="no sweep corpus in this checkout")


def _module(name: str, folder: Path = SWEEPS) -> ModuleType:
    """Load ``folder/name.py`` with ``folder`` first on the path, and leave the path as it was
    (a script may put its own folders on it when it is imported)."""
    saved_path = list(sys.path)
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses resolve their annotations through sys.modules
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path[:] = saved_path


@pytest.fixture(scope="module")
def stored() -> list[dict]:
    return json.loads(LABELS.read_text(encoding="utf-8"))["runs"]


def test_labels_are_what_the_rules_compute(stored: list[dict]) -> None:
    label = _module("label")
    assert label.label_all() == stored


def test_corpus_shape(stored: list[dict]) -> None:
    generate = _module("generate")
    groups: dict[str, list[dict]] = defaultdict(list)
    for x in stored:
        groups[x["group"]].append(x)
    regimes = {x["regime"] for x in stored}
    assert len(stored) >= 200
    assert len(regimes) >= 8
    # Every group holds the six warmups of one regime and seed.
    for runs in groups.values():
        assert sorted(x["warmup_share"] for x in runs) == sorted(generate.WARMUPS)
        assert len({x["regime"] for x in runs}) == 1
    # Both seeds of a regime sit in the same half; both halves are used.
    halves = {r: {x["split"] for x in stored if x["regime"] == r} for r in regimes}
    assert all(len(h) == 1 for h in halves.values())
    assert {next(iter(h)) for h in halves.values()} == {"calibration", "test"}


def test_the_rules_structure(stored: list[dict]) -> None:
    """What the README's rules promise, checked on every stored label."""
    by_group: dict[str, list[dict]] = defaultdict(list)
    for x in stored:
        by_group[x["group"]].append(x)
    for x in stored:
        acc = set(x["acceptable_verdicts"])
        assert x["label"] in acc
        assert x["strictly_healthy"] == (acc == {"healthy"})
        if x["strictly_healthy"]:
            # Only a usual-length warmup can be strictly healthy.
            assert x["warmup_share"] <= 0.2
        if x["warmup_share"] > 0.2 and x["label"] in ("healthy", "warmup_too_long"):
            # A long warmup without instability: too long is always an acceptable reading.
            assert "warmup_too_long" in acc
        if x["label"] == "warmup_too_short":
            assert x["warmup_share"] < 0.1
    for runs in by_group.values():
        labels = {x["label"] for x in runs}
        if labels <= {"lr_too_high", "warmup_too_short"} and all(
            x["onset_step"] is not None for x in runs
        ):
            # Every warmup failed: the group says "LR too high", never "warmup too short".
            assert all(x["label"] == "lr_too_high" for x in runs)


def test_lamb_moves_each_tensor_by_lr_times_its_norm() -> None:
    """LAMB's trust ratio: without weight decay, a step moves every tensor by ``lr * ||w||``,
    whatever its gradient's scale (what makes the LR a relative step size)."""
    torch = pytest.importorskip("torch")
    generate = _module("generate")
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(8, 4) * s) for s in (0.01, 1.0, 30.0)]
    opt = generate._lamb(weights, lr=0.05, weight_decay=0.0, beta2=0.999)
    for w, g in zip(weights, (1e-6, 1.0, 1e4), strict=True):
        w.grad = torch.randn_like(w) * g
    before = [w.detach().clone() for w in weights]
    opt.step()
    for w, b in zip(weights, before, strict=True):
        moved = float((w.detach() - b).norm())
        assert moved == pytest.approx(0.05 * float(b.norm()), rel=1e-5)


def test_word_task_ids() -> None:
    """The words task: ids inside the vocabulary, the most frequent word first, and few words
    outside the vocabulary."""
    pytest.importorskip("pydoc_data.topics")  # part of the standard library, not every build
    generate = _module("generate")
    ids = generate._word_ids()
    assert len(ids) > 100_000
    assert min(ids) >= 0 and max(ids) == generate.WORD_VOCAB - 1
    counts = defaultdict(int)
    for i in ids:
        counts[i] += 1
    assert max(counts, key=counts.__getitem__) == 1
    assert counts[0] < 0.05 * len(ids)


def test_mixer_mixes_across_patches() -> None:
    """The MLP-Mixer's token-mixing layers see where each patch is: swapping two patches of an
    image changes its output, which a per-patch network with mean pooling could not do."""
    torch = pytest.importorskip("torch")
    generate = _module("generate")
    regime = next(r for r in generate.REGIMES if r.arch == "mixer")
    torch.manual_seed(0)
    net = generate._image_net(regime)
    image = torch.randn(1, 1, generate.IMAGE, generate.IMAGE)
    swapped = image.clone()
    swapped[..., 0:4, 0:4], swapped[..., 4:8, 4:8] = image[..., 4:8, 4:8], image[..., 0:4, 0:4]
    with torch.no_grad():
        out, out_swapped = net(image), net(swapped)
    assert out.shape == (1, generate.N_CLASSES)
    assert not torch.allclose(out, out_swapped, atol=1e-4)


def test_every_architecture_has_a_family() -> None:
    """The accuracy benchmark reports the corpus by family: no architecture may fall outside."""
    generate = _module("generate")
    bench = _module("bench_accuracy", SWEEPS.parent)
    assert {r.arch for r in generate.REGIMES} <= set(bench.FAMILY)
