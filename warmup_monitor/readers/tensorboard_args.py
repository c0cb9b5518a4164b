"""The training arguments an HF Trainer writes into its TensorBoard event file.

The Trainer's TensorBoard callback (and so LLaMA-Factory's) writes ``TrainingArguments`` as
JSON text (tag ``args/text_summary``) when training begins, before any scalar. A run shared as
its ``runs/`` folder alone (an event file in a model repository) still carries its
``max_steps``, ``warmup_steps``, ``logging_steps`` and ``max_grad_norm`` there. Only the start
of the file is read: the arguments come first, and the scan stops at the first scalar.
"""

from __future__ import annotations

import os

import numpy as np

from ..untrusted import read_regular
from ._crc32c import masked_crc32c
from ._tfrecord import frame

__all__ = ["ARGS_TAG", "trainer_arguments"]

ARGS_TAG = "args/text_summary"
_ARGS_TAG_BYTES = ARGS_TAG.encode()
_FIRST_READ = 8 << 10  # the arguments of a typical run are 4-8 kB
_MAX_READ = 1 << 20  # a model config written before them can be long; never more than this


def trainer_arguments(path: str | os.PathLike[str]) -> str | None:
    """The ``args`` text written before the first scalar of the event file, or ``None``.

    ``None`` too for an unreadable, damaged or foreign file: the arguments are evidence, and
    their absence is the usual case (only the HF Trainer writes them).
    """
    limit = _FIRST_READ
    while True:
        try:
            raw = read_regular(path, limit)
        except OSError:
            return None
        if limit == _FIRST_READ and _ARGS_TAG_BYTES not in raw:
            # The Trainer writes them first, right after the file's version record: a file
            # whose first kilobytes do not name them has none (most files; nothing is parsed).
            return None
        found, complete = _scan(raw)
        if found is not None or complete or len(raw) < limit or limit >= _MAX_READ:
            return found
        limit *= 8  # the first records did not fit: one longer read


def _scan(raw: bytes) -> tuple[str | None, bool]:
    """``(arguments, done)``: done once a scalar (or damage) shows that none come later."""
    from tensorboard.compat.proto.event_pb2 import Event

    framing = frame(np.frombuffer(raw, dtype=np.uint8), 0, len(raw))
    if framing.error is not None:
        return None, True
    for off, length in zip(framing.offsets.tolist(), framing.lengths.tolist(), strict=True):
        payload = raw[off : off + length]
        if masked_crc32c(payload) != int.from_bytes(raw[off + length : off + length + 4], "little"):
            return None, True
        try:
            event = Event.FromString(payload)
        except Exception:  # protobuf raises its own DecodeError types
            return None, True
        if event.WhichOneof("what") != "summary":
            continue
        for value in event.summary.value:
            kind = value.WhichOneof("value")
            if value.tag == ARGS_TAG and kind == "tensor" and value.tensor.string_val:
                return value.tensor.string_val[0].decode("utf-8", errors="replace"), True
            if kind == "simple_value" or (kind == "tensor" and not value.tensor.string_val):
                return None, True  # the scalars have begun
    return None, False
