"""Generate the warmup sweep corpus by real training on the CPU.

Each *group* is a set of sibling runs that share everything — model, data order, seed, peak LR,
schedule, optimizer, clipping, logging — except the warmup length (0, 2%, 10%, 30%, 60% of the
run, and a warmup 1.5x longer than the run). A *regime* is one such setting; every regime is
trained with two seeds, so it gives two groups. The runs are labelled afterwards by
``label.py`` from their siblings (see README.md); nothing here decides a label.

    python benchmarks/sweeps/generate.py                 # every missing run (resumable)
    python benchmarks/sweeps/generate.py --jobs 2        # two worker processes
    python benchmarks/sweeps/generate.py --only gpt2_adam_good --list

A run already on disk (its ``truth.json.gz`` written last) is skipped, so the generation can be
stopped and resumed at any point. Nothing is downloaded: text comes from the Python standard
library's own sources, the images of the shapes task are drawn here from a seed, the fine-tuning
regimes start from a checkpoint this script pretrains first (kept in ``_cache/``, not in the
corpus; the multi-epoch ones pass many times over a small fixed set of source windows), and
models are small randomly initialised transformers from ``transformers``' own classes, LoRA
adapters from ``peft``, and torch's LSTM, GRU, a small CNN and an MLP.

What each run writes (the formats are the real writers' own):

* ``tb`` runs: a TensorBoard event file by torch's ``SummaryWriter`` (``train/loss``,
  ``train/learning_rate``, ``train/grad_norm``, ``eval/loss``; the loss is the mean over the
  logging window, NaN logged as NaN, as custom training loops do) and ``training_args.json``.
* ``hf`` runs: ``trainer_state.json`` by ``transformers.TrainerState.save_to_json`` with the
  Trainer's ``log_history`` entries; the logged loss follows the Trainer's
  ``logging_nan_inf_filter`` (a NaN/Inf step adds the running mean instead), so a run whose
  weights went NaN logs ``loss: 0.0`` beside a NaN ``grad_norm``, exactly as real runs do.
* ``eval`` runs (one regime): only the eval loss and the LR are logged, as some trainers do.
* every run: ``truth.json.gz`` with the per-step training loss, LR and grad norm (the ground
  truth the labels are computed from; the diagnosis never reads it).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import dataclasses
import gzip
import importlib
import json
import math
import multiprocessing as mp
import shutil
import socket
import string
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
CACHE = HERE / "_cache"
# Each run's per-step record, gzipped (a third of the corpus's bytes otherwise). No time stamp
# in the gzip header: the same record gives the same bytes.
TRUTH = "truth.json.gz"
SEQ_LEN = 64
SEQ2SEQ_LEN = 32  # the seq2seq task's windows
VOCAB = string.printable
# The seq2seq task's extra ids: the mask that replaces a character in the input, the padding id
# and the decoder's start id (BART's own shift of the labels needs both).
MASK_ID, PAD_ID, START_ID = len(VOCAB), len(VOCAB) + 1, len(VOCAB) + 2
IMAGE = 16  # side of the shapes task's images
N_CLASSES = 10
N_IMAGES = 8192  # the shapes task's pool: eval set and training images (about 1.2 epochs)
DIFFUSION_T = 200  # the denoise task's noise levels: DDPM's linear betas from 1e-4 to 0.02
WARMUPS = (0.0, 0.02, 0.1, 0.3, 0.6, 1.5)  # warmup as a share of the run's steps
SEEDS = (1, 2)
SMALL_SET = 64  # the multi-epoch regimes' training windows: 16 steps per epoch at batch 4
PRETRAIN_STEPS = 500
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
    "argparse",
    "dataclasses",
    "inspect",
)
FINETUNE_MODULES = ("statistics", "ipaddress")  # not among the pretraining's CORPUS_MODULES
# The words task: the most frequent words of its text, id 0 for every other word.
WORD_VOCAB = 4096


@dataclasses.dataclass(frozen=True)
class Regime:
    """Everything a group of sibling runs shares."""

    name: str
    description: str
    # gpt2 (pre-LN decoder), llama (pre-LN, RMSNorm), bert (post-LN encoder, MLM), bart (post-LN
    # encoder-decoder), t5 (pre-LN RMS-norm encoder-decoder, relative attention), mixtral
    # (mixture-of-experts decoder), neox (GPT-NeoX: parallel residual, rotary), gpt1 (post-LN
    # decoder), opt (ReLU MLP, learned positions), bloom (ALiBi, a norm on the embeddings), phi
    # (parallel attention and MLP, rotary on half of each head), falcon (parallel attention,
    # one key/value head), gemma (scaled embeddings, GeGLU), qwen2 (Llama's layout with biases on
    # the query/key/value projections), gptj (parallel attention and MLP, partial rotary), mamba
    # (state-space, no attention), lstm, gru, and for images cnn, resnet (BatchNorm, residual
    # blocks), vit (pre-LN encoder), mixer (MLP-Mixer), mlp, and denoiser (a diffusion model's
    # noise predictor)
    arch: str
    # adamw (AMSGrad if `amsgrad`), sgd (`momentum`, Nesterov if `nesterov`), rmsprop, nadam,
    # radam, adafactor (fixed LR), adamax, adagrad, adadelta, asgd (averaged SGD), lion, lamb
    # (Adam's step scaled per tensor by a trust ratio) or muon (torch's Muon on the hidden
    # matrices, AdamW on the rest)
    optimizer: str
    lr: float
    # linear, cosine, constant_with_warmup, warmup_stable_decay, cosine_with_min_lr, inverse_sqrt,
    # polynomial, cosine_with_restarts
    scheduler: str
    max_grad_norm: float  # 0: no clipping
    logging_steps: int
    steps: int = 200
    batch_size: int = 16
    d_model: int = 64
    n_layer: int = 2
    init: str = "scratch"  # scratch, full_ft (from the pretrained checkpoint), lora
    # code (stdlib source, next-character LM), arith (fine-tuning text), code_ft (stdlib source
    # the pretraining never saw, for the small multi-epoch sets), seq2seq (restore a stdlib
    # window with masked characters), words (next-word LM on English documentation and stdlib
    # source, a 4,096-word vocabulary; decoders and recurrent nets only), shapes (classify 16x16
    # images of 10 shapes) or denoise (DDPM's noise prediction on the same images)
    task: str = "code"
    fmt: str = "tb"  # tb, hf or eval
    fp16: bool = False  # fp16 autocast with a dynamic GradScaler
    weight_decay: float = 0.0
    adam_beta2: float = 0.999
    # A small fine-tuning set of this many windows, the same for every seed, that the run passes
    # over for many epochs (reshuffled every epoch from the seed); None: the task's whole text.
    train_examples: int | None = None
    nesterov: bool = False  # SGD only: Nesterov momentum
    momentum: float = 0.9  # SGD only
    amsgrad: bool = False  # AdamW only: the AMSGrad variant (the running max of the 2nd moment)
    # The scheduler's own arguments (the Trainer's `lr_scheduler_kwargs`), as (name, value) pairs.
    scheduler_kwargs: tuple[tuple[str, Any], ...] = ()

    def warmup_steps(self, share: float) -> int:
        return round(share * self.steps)


REGIMES: tuple[Regime, ...] = (
    # --- pre-LN decoders from scratch -------------------------------------------------------
    Regime(
        "gpt2_adam_good",
        "GPT-2 pre-LN, AdamW at a well-tuned LR",
        "gpt2",
        "adamw",
        3e-3,
        "cosine",
        1.0,
        10,
    ),
    Regime(
        "gpt2_adam_lowlr",
        "GPT-2 pre-LN, AdamW at an LR-limited LR",
        "gpt2",
        "adamw",
        3e-4,
        "linear",
        1.0,
        10,
        fmt="hf",
    ),
    Regime(
        "gpt2_adam_high_noclip",
        "GPT-2, AdamW at a high LR, no clipping, per-step logs",
        "gpt2",
        "adamw",
        2e-2,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "gpt2_adam_toohigh",
        "GPT-2, AdamW far above a sane LR",
        "gpt2",
        "adamw",
        1e-1,
        "constant_with_warmup",
        1.0,
        5,
        fmt="hf",
    ),
    Regime(
        "llama_adam_high",
        "Llama (RMSNorm, SwiGLU), AdamW at a high LR, no clipping",
        "llama",
        "adamw",
        1e-2,
        "cosine",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "llama_adam_lowlr_eval",
        "Llama, AdamW at a low LR, only eval loss and LR logged",
        "llama",
        "adamw",
        5e-4,
        "linear",
        1.0,
        10,
        fmt="eval",
    ),
    Regime("gpt2_sgd", "GPT-2, SGD with momentum", "gpt2", "sgd", 0.3, "cosine", 1.0, 10),
    Regime(
        "gpt2_adam_fp16",
        "GPT-2, AdamW, fp16 autocast with a dynamic loss scaler",
        "gpt2",
        "adamw",
        3e-3,
        "linear",
        1.0,
        5,
        batch_size=8,
        fp16=True,
        fmt="hf",
    ),
    # --- post-LN encoder (BERT MLM) from scratch --------------------------------------------
    Regime(
        "bert_adam_mid",
        "BERT post-LN MLM, AdamW at a moderate LR",
        "bert",
        "adamw",
        1e-3,
        "linear",
        1.0,
        10,
        fmt="hf",
    ),
    Regime(
        "bert_adam_high",
        "BERT post-LN MLM, AdamW at a high LR, no clipping, per-step logs",
        "bert",
        "adamw",
        5e-3,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "bert_adam_lowlr",
        "BERT post-LN MLM, AdamW at an LR-limited LR",
        "bert",
        "adamw",
        2e-4,
        "cosine",
        1.0,
        5,
    ),
    # --- non-transformer: LSTM language model ------------------------------------------------
    Regime(
        "lstm_sgd",
        "LSTM LM, SGD with momentum, clipping 0.25",
        "lstm",
        "sgd",
        2.0,
        "cosine",
        0.25,
        10,
        fmt="hf",
    ),
    Regime(
        "lstm_adam_high",
        "LSTM LM, AdamW at a high LR, no clipping, per-step logs",
        "lstm",
        "adamw",
        3e-2,
        "linear",
        0.0,
        1,
    ),
    Regime(
        "lstm_adam_lowlr",
        "LSTM LM, AdamW at an LR-limited LR",
        "lstm",
        "adamw",
        5e-4,
        "constant_with_warmup",
        1.0,
        10,
    ),
    # --- fine-tuning a pretrained checkpoint -------------------------------------------------
    Regime(
        "ft_full_adam",
        "full fine-tuning of the pretrained GPT-2, AdamW",
        "gpt2",
        "adamw",
        1e-3,
        "linear",
        1.0,
        5,
        init="full_ft",
        task="arith",
        fmt="hf",
    ),
    Regime(
        "ft_full_adam_high",
        "full fine-tuning, AdamW at a high LR, no clipping",
        "gpt2",
        "adamw",
        1e-2,
        "cosine",
        0.0,
        5,
        init="full_ft",
        task="arith",
    ),
    Regime(
        "ft_lora_adam",
        "LoRA (peft) on the pretrained GPT-2, AdamW",
        "gpt2",
        "adamw",
        3e-3,
        "cosine",
        1.0,
        10,
        init="lora",
        task="arith",
        fmt="hf",
    ),
    Regime(
        "ft_lora_adam_lowlr",
        "LoRA, AdamW at an LR-limited LR, per-step logs",
        "gpt2",
        "adamw",
        3e-4,
        "linear",
        1.0,
        1,
        init="lora",
        task="arith",
    ),
    # --- LRs where the warmup decides between stable and unstable ---------------------------
    Regime(
        "gpt2_adam_spiky",
        "GPT-2, AdamW far too high without warmup, no clipping, per-step logs",
        "gpt2",
        "adamw",
        6e-2,
        "linear",
        0.0,
        1,
    ),
    Regime(
        "bert_adam_toohigh",
        "BERT post-LN, AdamW at a high LR, no clipping",
        "bert",
        "adamw",
        2e-2,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "llama_adam_toohigh",
        "Llama, AdamW far too high, no clipping",
        "llama",
        "adamw",
        5e-2,
        "cosine",
        0.0,
        10,
        fmt="hf",
    ),
    Regime(
        "lstm_adam_toohigh",
        "LSTM LM, AdamW far too high, no clipping",
        "lstm",
        "adamw",
        1e-1,
        "cosine",
        0.0,
        5,
    ),
    # --- LRs high enough to blow up without a warmup (NaN, divergence, lasting climbs) ------
    Regime(
        "gpt2_sgd_noclip",
        "GPT-2, SGD with momentum at a high LR, no clipping, per-step logs",
        "gpt2",
        "sgd",
        0.5,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "llama_sgd_noclip",
        "Llama, SGD with momentum at a high LR, no clipping",
        "llama",
        "sgd",
        0.5,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "lstm_sgd_noclip_toohigh",
        "LSTM LM, SGD with momentum far too high, no clipping, per-step logs",
        "lstm",
        "sgd",
        15.0,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "lstm_sgd_noclip_high",
        "LSTM LM, SGD with momentum at a high LR, no clipping",
        "lstm",
        "sgd",
        8.0,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "gpt2_wide_adam_toohigh",
        "wider GPT-2 (128-d), AdamW far too high, no clipping, per-step logs",
        "gpt2",
        "adamw",
        1e-1,
        "cosine",
        0.0,
        1,
        d_model=128,
    ),
    Regime(
        "bert_sgd_toohigh",
        "BERT post-LN MLM, SGD with momentum far too high, no clipping",
        "bert",
        "sgd",
        1.0,
        "linear",
        0.0,
        5,
    ),
    Regime(
        "llama_adafactor",
        "Llama, Adafactor at a fixed LR (no relative step), clipping",
        "llama",
        "adafactor",
        1e-2,
        "cosine",
        1.0,
        5,
        fmt="hf",
    ),
    Regime(
        "gpt2_rmsprop_high",
        "GPT-2, RMSprop at a high LR, no clipping, per-step logs",
        "gpt2",
        "rmsprop",
        3e-3,
        "linear",
        0.0,
        1,
    ),
    # --- three times longer runs: the rules must not depend on a run length ------------------
    Regime(
        "gpt2_adam_lowlr_long",
        "GPT-2, AdamW at an LR-limited LR, 600 steps",
        "gpt2",
        "adamw",
        3e-4,
        "cosine",
        1.0,
        10,
        steps=600,
        fmt="hf",
    ),
    Regime(
        "llama_adam_high_long",
        "Llama, AdamW at a high LR, no clipping, 600 steps",
        "llama",
        "adamw",
        3e-2,
        "linear",
        0.0,
        5,
        steps=600,
    ),
    # --- blow-ups seen through the Trainer's logs: a window mean every 5-10 steps -----------
    Regime(
        "gpt2_sgd_noclip_hf",
        "GPT-2, SGD with momentum at a high LR, no clipping, Trainer logs every 5 steps",
        "gpt2",
        "sgd",
        0.5,
        "cosine",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "llama_rmsprop_hf",
        "Llama, RMSprop at a high LR, no clipping, Trainer logs every 10 steps",
        "llama",
        "rmsprop",
        3e-3,
        "cosine",
        0.0,
        10,
        fmt="hf",
    ),
    Regime(
        "lstm_sgd_noclip_hf",
        "LSTM LM, SGD with momentum far too high, no clipping, Trainer logs every 10 steps",
        "lstm",
        "sgd",
        15.0,
        "linear",
        0.0,
        10,
        fmt="hf",
    ),
    Regime(
        "gpt2_wide_adam_toohigh_hf",
        "wider GPT-2 (128-d), AdamW far too high, no clipping, Trainer logs every 5 steps",
        "gpt2",
        "adamw",
        1e-1,
        "linear",
        0.0,
        5,
        d_model=128,
        fmt="hf",
    ),
    # --- LRs no warmup rescues ----------------------------------------------------------------
    Regime(
        "gpt2_sgd_noclip_toohigh",
        "GPT-2, SGD with momentum far too high, no clipping, per-step logs",
        "gpt2",
        "sgd",
        1.0,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "llama_sgd_noclip_toohigh",
        "Llama, SGD with momentum far too high, no clipping, Trainer logs every 5 steps",
        "llama",
        "sgd",
        1.0,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    # --- NAdam and RAdam (Adam with a built-in rectified start) -----------------------------
    Regime(
        "gpt2_radam_high",
        "GPT-2, RAdam high, no clipping, per-step logs",
        "gpt2",
        "radam",
        3e-2,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "llama_nadam_high_hf",
        "Llama, NAdam high, no clipping, Trainer logs every 5 steps",
        "llama",
        "nadam",
        1e-2,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "lstm_radam_high",
        "LSTM, RAdam high, no clipping, per-step logs",
        "lstm",
        "radam",
        3e-2,
        "linear",
        0.0,
        1,
    ),
    Regime(
        "gpt2_nadam_spiky",
        "GPT-2, NAdam very high, no clipping, per-step logs",
        "gpt2",
        "nadam",
        6e-2,
        "linear",
        0.0,
        1,
    ),
    Regime(
        "gpt2_wide_nadam_toohigh_hf",
        "wider GPT-2 (128-d), NAdam far too high, no clipping, Trainer logs every 5 steps",
        "gpt2",
        "nadam",
        1e-1,
        "cosine",
        0.0,
        5,
        d_model=128,
        fmt="hf",
    ),
    Regime(
        "llama_radam_lowlr",
        "Llama, RAdam at a low LR (LR-limited), Trainer logs every 10 steps",
        "llama",
        "radam",
        5e-4,
        "cosine",
        1.0,
        10,
        fmt="hf",
    ),
    # --- other architectures, optimizers and a classification loss (ln 10 down to ~0) --------
    Regime(
        "cnn_shapes_adam_high",
        "small CNN classifying shapes, AdamW at a high LR, clipping, per-step logs",
        "cnn",
        "adamw",
        1e-2,
        "cosine",
        1.0,
        1,
        batch_size=32,
        task="shapes",
    ),
    Regime(
        "vit_shapes_adamw_toohigh_hf",
        "tiny ViT classifying shapes, AdamW far too high, no clipping, Trainer logs every 5 steps",
        "vit",
        "adamw",
        3e-2,
        "linear",
        0.0,
        5,
        batch_size=32,
        task="shapes",
        fmt="hf",
    ),
    Regime(
        "bart_adam_high",
        "BART post-LN encoder-decoder restoring masked characters, AdamW at a high LR",
        "bart",
        "adamw",
        5e-3,
        "linear",
        1.0,
        10,
        task="seq2seq",
    ),
    Regime(
        "gru_adamax_high",
        "GRU LM, Adamax at a high LR, no clipping, per-step logs",
        "gru",
        "adamax",
        2e-2,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "gpt2_adagrad_high_hf",
        "GPT-2, Adagrad at a high LR, clipping, Trainer logs every 5 steps",
        "gpt2",
        "adagrad",
        5e-2,
        "linear",
        1.0,
        5,
        fmt="hf",
    ),
    Regime(
        "mlp_shapes_sgd_noclip",
        "MLP classifying shapes, SGD with momentum at a high LR, no clipping",
        "mlp",
        "sgd",
        0.5,
        "linear",
        0.0,
        10,
        batch_size=32,
        d_model=128,
        task="shapes",
    ),
    # --- multi-epoch fine-tuning on a small set, as most public fine-tuning runs are ---------
    Regime(
        "ft_lora_epochs",
        "LoRA on the pretrained GPT-2, 64 new source windows, 12.5 epochs, AdamW, per-step logs",
        "gpt2",
        "adamw",
        3e-3,
        "linear",
        1.0,
        1,
        init="lora",
        batch_size=4,
        task="code_ft",
        fmt="hf",
        train_examples=SMALL_SET,
    ),
    Regime(
        "ft_full_epochs_high",
        "full fine-tuning, 64 new source windows, 12.5 epochs, AdamW at a high LR, no clipping",
        "gpt2",
        "adamw",
        1e-2,
        "cosine",
        0.0,
        5,
        init="full_ft",
        batch_size=4,
        task="code_ft",
        fmt="hf",
        train_examples=SMALL_SET,
    ),
    Regime(
        "ft_full_epochs_lowlr",
        "full fine-tuning, 64 new source windows, 12.5 epochs, AdamW at an LR-limited LR",
        "gpt2",
        "adamw",
        1e-4,
        "linear",
        1.0,
        10,
        init="full_ft",
        batch_size=4,
        task="code_ft",
        train_examples=SMALL_SET,
    ),
    Regime(
        "ft_lora_epochs_toohigh",
        "LoRA, 64 new source windows, 12.5 epochs, AdamW far too high, no clipping, per-step logs",
        "gpt2",
        "adamw",
        5e-2,
        "linear",
        0.0,
        1,
        init="lora",
        batch_size=4,
        task="code_ft",
        train_examples=SMALL_SET,
    ),
    # --- more architectures and LLM-style optimizer settings -----------------------------------
    Regime(
        "t5_adam_high",
        "T5 (relative attention, pre-LN RMS norm) restoring masked characters, AdamW at a high LR",
        "t5",
        "adamw",
        5e-3,
        "cosine",
        1.0,
        5,
        task="seq2seq",
        fmt="hf",
    ),
    Regime(
        "moe_adam_high",
        "mixture-of-experts decoder (Mixtral, 4 experts, 2 per token), AdamW high, no clipping, "
        "per-step logs",
        "mixtral",
        "adamw",
        1e-2,
        "linear",
        0.0,
        1,
    ),
    Regime(
        "gpt2_adam_b095_wd",
        "GPT-2, AdamW with betas (0.9, 0.95) and weight decay 0.1 at a high LR",
        "gpt2",
        "adamw",
        3e-2,
        "cosine",
        1.0,
        10,
        adam_beta2=0.95,
        weight_decay=0.1,
    ),
    Regime(
        "llama_sgd_nesterov_hf",
        "Llama, SGD with Nesterov momentum at a high LR, clipping, Trainer logs every 5 steps",
        "llama",
        "sgd",
        0.5,
        "linear",
        1.0,
        5,
        fmt="hf",
        nesterov=True,
    ),
    # --- optimizers and families trained in no earlier regime, at LRs meant to be unstable ------
    Regime(
        "resnet_shapes_sgd_high_hf",
        "ResNet (BatchNorm, 2 residual blocks) classifying shapes, SGD with momentum at a high "
        "LR, no clipping, Trainer logs every 5 steps",
        "resnet",
        "sgd",
        0.8,
        "cosine",
        0.0,
        5,
        batch_size=32,
        task="shapes",
        fmt="hf",
    ),
    Regime(
        "gpt2_lion_high",
        "GPT-2, Lion at a high LR, no clipping, per-step logs",
        "gpt2",
        "lion",
        3e-3,
        "linear",
        0.0,
        1,
    ),
    Regime(
        "llama_lion_toohigh_hf",
        "Llama, Lion far too high, no clipping, Trainer logs every 5 steps",
        "llama",
        "lion",
        1e-2,
        "cosine",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "resnet_shapes_sgd_toohigh",
        "ResNet classifying shapes, SGD with momentum far too high, no clipping, per-step logs",
        "resnet",
        "sgd",
        3.0,
        "linear",
        0.0,
        1,
        batch_size=32,
        task="shapes",
    ),
    Regime(
        "moe_adam_toohigh",
        "mixture-of-experts decoder, AdamW far too high, no clipping",
        "mixtral",
        "adamw",
        5e-2,
        "cosine",
        0.0,
        10,
    ),
    Regime(
        "t5_adafactor_toohigh_hf",
        "T5 restoring masked characters, Adafactor (fixed LR) far too high, no clipping, Trainer "
        "logs every 5 steps",
        "t5",
        "adafactor",
        5e-2,
        "linear",
        0.0,
        5,
        task="seq2seq",
        fmt="hf",
    ),
    # --- optimizer x architecture pairs no earlier regime has, checked as they came ----------
    Regime(
        "bart_lion_high",
        "BART restoring masked characters, Lion at a high LR, Trainer logs every 10 steps",
        "bart",
        "lion",
        2e-3,
        "linear",
        1.0,
        10,
        task="seq2seq",
        fmt="hf",
    ),
    Regime(
        "t5_sgd_high",
        "T5 restoring masked characters, SGD with momentum at a high LR, no clipping",
        "t5",
        "sgd",
        0.5,
        "cosine",
        0.0,
        5,
        task="seq2seq",
    ),
    Regime(
        "moe_rmsprop_high",
        "Mixtral mixture-of-experts decoder, RMSprop at a high LR, no clipping, per-step logs",
        "mixtral",
        "rmsprop",
        3e-3,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "gru_nadam_toohigh",
        "GRU LM, NAdam far too high, no clipping, Trainer logs every 5 steps",
        "gru",
        "nadam",
        3e-2,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "vit_sgd_high",
        "ViT on the shapes images, SGD with momentum at a high LR, Trainer logs every 5 steps",
        "vit",
        "sgd",
        0.3,
        "linear",
        1.0,
        5,
        batch_size=32,
        task="shapes",
        fmt="hf",
    ),
    Regime(
        "bert_adafactor_high",
        "BERT masked LM, Adafactor (fixed LR) at a high LR, Trainer logs every 10 steps",
        "bert",
        "adafactor",
        1e-2,
        "linear",
        1.0,
        10,
        fmt="hf",
    ),
    Regime(
        "llama_adamax_high",
        "Llama, Adamax at a high LR, no clipping, per-step logs",
        "llama",
        "adamax",
        3e-2,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "lstm_lion_high",
        "LSTM LM, Lion at a high LR, constant after the warmup, no clipping",
        "lstm",
        "lion",
        3e-3,
        "constant_with_warmup",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "gpt2_adam_lowlr_perstep",
        "GPT-2, AdamW at an LR-limited LR, per-step logs",
        "gpt2",
        "adamw",
        2e-4,
        "cosine",
        1.0,
        1,
    ),
    Regime(
        "cnn_rmsprop_high",
        "CNN on the shapes images, RMSprop at a high LR, no clipping, Trainer logs every 5 steps",
        "cnn",
        "rmsprop",
        3e-3,
        "cosine",
        0.0,
        5,
        batch_size=32,
        task="shapes",
        fmt="hf",
    ),
    # --- a diffusion model: a noise-prediction (MSE) loss instead of a cross-entropy ----------
    Regime(
        "ddpm_adam_high_hf",
        "DDPM noise predictor on the shapes images, AdamW at a high LR, Trainer logs every 5 steps",
        "denoiser",
        "adamw",
        1e-2,
        "cosine",
        1.0,
        5,
        batch_size=32,
        d_model=32,
        task="denoise",
        fmt="hf",
    ),
    Regime(
        "ddpm_adam_toohigh",
        "DDPM noise predictor, AdamW far too high, no clipping, per-step logs",
        "denoiser",
        "adamw",
        5e-2,
        "linear",
        0.0,
        1,
        batch_size=32,
        d_model=32,
        task="denoise",
    ),
    # --- an optimizer and schedules no earlier regime has: Muon; warmup-stable-decay, cosine
    # to a floor and inverse square root ----------------------------------------------------
    Regime(
        "gpt2_muon_high",
        "GPT-2, Muon (AdamW-matched RMS) on the hidden matrices + AdamW on the rest, per-step logs",
        "gpt2",
        "muon",
        2e-2,
        "linear",
        0.0,
        1,
    ),
    Regime(
        "llama_adam_wsd_high",
        "Llama, AdamW at a high LR, warmup-stable-decay (the last 40 steps decay), Trainer logs",
        "llama",
        "adamw",
        3e-2,
        "warmup_stable_decay",
        1.0,
        5,
        fmt="hf",
        scheduler_kwargs=(("num_decay_steps", 40),),
    ),
    Regime(
        "bert_adam_minlr_high",
        "BERT, AdamW at a high LR, cosine down to a tenth of the peak, no clipping",
        "bert",
        "adamw",
        1e-2,
        "cosine_with_min_lr",
        0.0,
        10,
        scheduler_kwargs=(("min_lr_rate", 0.1),),
    ),
    Regime(
        "gpt2_muon_toohigh_hf",
        "GPT-2, Muon + AdamW far too high, no clipping, Trainer logs every 5 steps",
        "gpt2",
        "muon",
        1e-1,
        "cosine",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "lstm_sgd_wsd_high",
        "LSTM, SGD with momentum at a high LR, warmup-stable-decay, no clipping",
        "lstm",
        "sgd",
        6.0,
        "warmup_stable_decay",
        0.0,
        10,
        scheduler_kwargs=(("num_decay_steps", 40),),
    ),
    Regime(
        "t5_adam_invsqrt_high",
        "T5, AdamW at a high LR, inverse-square-root decay after the warmup",
        "t5",
        "adamw",
        1e-2,
        "inverse_sqrt",
        1.0,
        5,
        task="seq2seq",
    ),
    Regime(
        "neox_adam_high",
        "GPT-NeoX (parallel residual, rotary), AdamW at a high LR, no clipping, logged every step",
        "neox",
        "adamw",
        2e-2,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "neox_adam_toohigh_hf",
        "GPT-NeoX, AdamW far too high, no clipping, Trainer logs every 5 steps",
        "neox",
        "adamw",
        8e-2,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "gpt1_adam_high_hf",
        "post-LN decoder (the original GPT), AdamW at a high LR, Trainer logs every 5 steps",
        "gpt1",
        "adamw",
        1e-2,
        "linear",
        1.0,
        5,
        fmt="hf",
    ),
    Regime(
        "gpt1_adam_mid",
        "post-LN decoder, AdamW at a mid LR, no clipping, logged every step",
        "gpt1",
        "adamw",
        3e-3,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "gpt1_sgd_high",
        "post-LN decoder, SGD with momentum at a high LR, no clipping",
        "gpt1",
        "sgd",
        0.5,
        "cosine",
        0.0,
        5,
    ),
    Regime(
        "mamba_adam_high_hf",
        "Mamba (state-space, no attention), AdamW at a high LR, Trainer logs every 5 steps",
        "mamba",
        "adamw",
        1e-2,
        "cosine",
        1.0,
        5,
        fmt="hf",
    ),
    Regime(
        "gpt2_adadelta",
        "GPT-2, Adadelta at LR 2, no clipping, logged every step",
        "gpt2",
        "adadelta",
        2.0,
        "linear",
        0.0,
        1,
    ),
    Regime(
        "llama_sgd_plain_hf",
        "Llama, plain SGD (no momentum) at a high LR, Trainer logs every 10 steps",
        "llama",
        "sgd",
        2.0,
        "linear",
        1.0,
        10,
        fmt="hf",
        momentum=0.0,
    ),
    Regime(
        "lstm_amsgrad_toohigh",
        "LSTM, AdamW with AMSGrad far too high, no clipping",
        "lstm",
        "adamw",
        5e-2,
        "cosine",
        0.0,
        5,
        amsgrad=True,
    ),
    Regime(
        "gru_sgd_high_hf",
        "GRU, SGD with momentum at a high LR, no clipping, Trainer logs every 5 steps",
        "gru",
        "sgd",
        4.0,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "opt_adam_high",
        "OPT (ReLU MLP, learned positions), AdamW at a high LR, logged every step",
        "opt",
        "adamw",
        1e-2,
        "cosine",
        1.0,
        1,
    ),
    Regime(
        "opt_sgd_high_hf",
        "OPT, SGD with momentum at a high LR, no clipping, Trainer logs every 5 steps",
        "opt",
        "sgd",
        1.0,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "bloom_adam_high_hf",
        "BLOOM (ALiBi, normed embeddings), AdamW at a high LR, Trainer logs every 5 steps",
        "bloom",
        "adamw",
        1e-2,
        "linear",
        1.0,
        5,
        fmt="hf",
    ),
    Regime(
        "bloom_adam_toohigh",
        "BLOOM, AdamW far too high, no clipping, logged every step",
        "bloom",
        "adamw",
        4e-2,
        "cosine",
        0.0,
        1,
    ),
    Regime(
        "phi_adam_high",
        "Phi (parallel attention and MLP), AdamW, constant LR after the warmup",
        "phi",
        "adamw",
        2e-2,
        "constant_with_warmup",
        1.0,
        1,
    ),
    Regime(
        "falcon_lion_high_hf",
        "Falcon (parallel attention, one key/value head), Lion, Trainer logs every 5 steps",
        "falcon",
        "lion",
        2e-3,
        "cosine",
        1.0,
        5,
        fmt="hf",
    ),
    Regime(
        "gemma_adam_mid",
        "Gemma (scaled embeddings, GeGLU), AdamW at a mid LR, logged every step",
        "gemma",
        "adamw",
        3e-3,
        "linear",
        1.0,
        1,
    ),
    Regime(
        "gpt2_asgd_high",
        "GPT-2, averaged SGD at a high LR, no clipping, logged every step",
        "gpt2",
        "asgd",
        1.0,
        "linear",
        0.0,
        1,
    ),
    Regime(
        "gemma_sgd_nesterov_high_hf",
        "Gemma, SGD with Nesterov momentum at a high LR, Trainer logs every 10 steps",
        "gemma",
        "sgd",
        0.5,
        "cosine",
        1.0,
        10,
        fmt="hf",
        nesterov=True,
    ),
    Regime(
        "phi_rmsprop_toohigh_hf",
        "Phi, RMSprop far too high, no clipping, Trainer logs every 5 steps",
        "phi",
        "rmsprop",
        1e-2,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    # --- a word-level LM (loss from ~8.3) and LAMB -------------------------------------------
    Regime(
        "gpt2_adam_high_words",
        "GPT-2 on words (4,096-word vocabulary), AdamW at a high LR",
        "gpt2",
        "adamw",
        1e-2,
        "linear",
        1.0,
        5,
        task="words",
    ),
    Regime(
        "llama_adam_toohigh_words_hf",
        "Llama on words, AdamW far too high, no clipping, Trainer logs every 10 steps",
        "llama",
        "adamw",
        3e-2,
        "cosine",
        0.0,
        10,
        fmt="hf",
        task="words",
    ),
    Regime(
        "gpt2_sgd_high_words_hf",
        "GPT-2 on words, SGD at a high LR, Trainer logs every 5 steps",
        "gpt2",
        "sgd",
        1.0,
        "linear",
        1.0,
        5,
        fmt="hf",
        task="words",
    ),
    Regime(
        "lstm_adam_lowlr_words",
        "LSTM on words, AdamW at an LR-limited LR",
        "lstm",
        "adamw",
        1e-3,
        "linear",
        1.0,
        5,
        task="words",
    ),
    Regime(
        "gpt1_adam_high_words",
        "original GPT (post-LN) on words, AdamW at a high LR, logged every step",
        "gpt1",
        "adamw",
        1e-2,
        "linear",
        1.0,
        1,
        task="words",
    ),
    Regime(
        "gpt2_lamb_high",
        "GPT-2, LAMB at a high LR",
        "gpt2",
        "lamb",
        5e-2,
        "linear",
        1.0,
        5,
    ),
    Regime(
        "bert_lamb_high_hf",
        "BERT (post-LN), LAMB at a high LR, Trainer logs every 10 steps",
        "bert",
        "lamb",
        2e-2,
        "linear",
        1.0,
        10,
        fmt="hf",
    ),
    Regime(
        "vit_lamb_high",
        "tiny ViT classifying shapes, LAMB at a high LR, cosine",
        "vit",
        "lamb",
        5e-2,
        "cosine",
        1.0,
        5,
        task="shapes",
    ),
    Regime(
        "llama_lamb_toohigh_hf",
        "Llama, LAMB far too high, no clipping, Trainer logs every 5 steps",
        "llama",
        "lamb",
        1e-1,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    # --- a check on runs no rule was tuned on: two more decoders, an MLP-Mixer, two more HF
    # schedules, weight decay on SGD and a five times longer run ----------------------------
    Regime(
        "qwen2_adam_high_hf",
        "Qwen2 (biases on the query/key/value projections), AdamW high, clipping",
        "qwen2",
        "adamw",
        1e-2,
        "cosine",
        1.0,
        5,
        fmt="hf",
    ),
    Regime(
        "gpt2_adam_poly_high_hf",
        "GPT-2, AdamW high, polynomial decay of power 2, clipping, Trainer logs every 10 steps",
        "gpt2",
        "adamw",
        2e-2,
        "polynomial",
        1.0,
        10,
        fmt="hf",
        scheduler_kwargs=(("power", 2.0),),
    ),
    Regime(
        "llama_adam_restarts_high",
        "Llama, AdamW high, cosine with two hard restarts, no clipping",
        "llama",
        "adamw",
        1e-2,
        "cosine_with_restarts",
        0.0,
        5,
        scheduler_kwargs=(("num_cycles", 2),),
    ),
    Regime(
        "mixer_shapes_adam_high_hf",
        "MLP-Mixer on the shapes, AdamW high, clipping",
        "mixer",
        "adamw",
        1e-2,
        "cosine",
        1.0,
        5,
        task="shapes",
        batch_size=32,
        fmt="hf",
    ),
    Regime(
        "gpt2_adam_high_1000_hf",
        "GPT-2, AdamW high, 1000 steps, clipping, Trainer logs every 20 steps",
        "gpt2",
        "adamw",
        1e-2,
        "linear",
        1.0,
        20,
        steps=1000,
        fmt="hf",
    ),
    Regime(
        "gptj_adam_toohigh_hf",
        "GPT-J (parallel attention and MLP, rotary), AdamW far too high, no clipping",
        "gptj",
        "adamw",
        5e-2,
        "linear",
        0.0,
        5,
        fmt="hf",
    ),
    Regime(
        "resnet_sgd_wd_high",
        "ResNet on the shapes, SGD with momentum and weight decay 5e-4, no clipping",
        "resnet",
        "sgd",
        0.4,
        "cosine",
        0.0,
        10,
        task="shapes",
        batch_size=32,
        weight_decay=5e-4,
    ),
)


@dataclasses.dataclass(frozen=True)
class Job:
    regime: Regime
    seed: int
    share: float

    @property
    def group(self) -> str:
        return f"{self.regime.name}__s{self.seed}"

    @property
    def run_name(self) -> str:
        return f"w{round(self.share * 100):03d}"

    @property
    def path(self) -> Path:
        return RUNS / self.group / self.run_name


# ------------------------------------------------------------------------------------ data
def _text(task: str) -> str:
    if task == "code_ft":
        # Source the pretraining never saw: the multi-epoch fine-tuning regimes' small set.
        return _source(FINETUNE_MODULES)
    if task == "arith":
        import random

        rng = random.Random(1234)
        lines = []
        for _ in range(40_000):
            a, b = rng.randrange(1000), rng.randrange(1000)
            op = rng.choice("+-")
            lines.append(f"{a}{op}{b}={a + b if op == '+' else a - b}")
        return "\n".join(lines)
    return _source(CORPUS_MODULES)


def _word_ids() -> list[int]:
    """The words task's text as word ids: the English of the interpreter's own documentation
    (``pydoc_data.topics``) then the source of ``CORPUS_MODULES``, lower-cased and cut into
    words, numbers and single punctuation marks; the ``WORD_VOCAB - 1`` most frequent get ids
    from 1 (most frequent first), every other word 0."""
    import collections
    import pydoc_data.topics
    import re

    text = "\n".join(pydoc_data.topics.topics.values()) + "\n" + _module_text(CORPUS_MODULES)
    words = re.findall(r"[a-z]+|\d+|[^\sa-z\d]", text.lower())
    top = collections.Counter(words).most_common(WORD_VOCAB - 1)
    ids = {w: i + 1 for i, (w, _) in enumerate(top)}
    return [ids.get(w, 0) for w in words]


def _vocab_size(r: Regime) -> int:
    """Output classes of a language model: words or characters."""
    return WORD_VOCAB if r.task == "words" else len(VOCAB)


def _module_text(modules: tuple[str, ...]) -> str:
    """The source files of ``modules``, one after the other."""
    return "\n".join(
        Path(importlib.import_module(name).__file__).read_text(encoding="utf-8") for name in modules
    )


def _source(modules: tuple[str, ...]) -> str:
    """:func:`_module_text` in the character vocabulary (any other character becomes "?")."""
    allowed = set(VOCAB)
    return "".join(c if c in allowed else "?" for c in _module_text(modules))


class _EpochOrder:
    """Indices of ``n`` training examples in a seeded order, reshuffled at each epoch (as the
    Trainer's sampler); the same draws whatever the examples are."""

    def __init__(self, n: int, seed: int, batch_size: int) -> None:
        import torch

        self.n = n
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(20_000 + seed)
        self.order = torch.randperm(n, generator=self.gen)
        self.pos = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size

    def next(self) -> Any:
        import torch

        if self.pos + self.batch_size > len(self.order):
            self.order = torch.randperm(self.n, generator=self.gen)
            self.pos = 0
        idx = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx


class Data:
    """Fixed windows of character ids: training batches in a seeded order, a held-out set."""

    def __init__(
        self, task: str, seed: int, batch_size: int, train_examples: int | None = None
    ) -> None:
        import torch

        if task == "words":
            ids = torch.tensor(_word_ids(), dtype=torch.long)
        else:
            text = _text(task)
            index = {c: i for i, c in enumerate(VOCAB)}
            ids = torch.tensor([index[c] for c in text], dtype=torch.long)
        length = SEQ2SEQ_LEN if task == "seq2seq" else SEQ_LEN
        n = len(ids) // length
        blocks = ids[: n * length].view(n, length)
        n_eval = 4 * batch_size
        if train_examples is None:
            g = torch.Generator().manual_seed(10_000 + seed)
            perm = torch.randperm(n, generator=g)
            self.eval_blocks = blocks[perm[:n_eval]]
            self.train_blocks = blocks[perm[n_eval:]]
        else:
            # A small dataset is a fixed file: the same windows (and held-out set, drawn from
            # the same text) whatever the seed, which only decides the order of each epoch.
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(10_000))
            self.eval_blocks = blocks[perm[:n_eval]]
            self.train_blocks = blocks[perm[n_eval : n_eval + train_examples]]
        self.batch_size = batch_size
        self.batches = _EpochOrder(len(self.train_blocks), seed, batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return self.batches.steps_per_epoch

    def next_batch(self) -> Any:
        return self.train_blocks[self.batches.next()]

    def eval_batches(self) -> list[Any]:
        return list(self.eval_blocks.split(self.batch_size))


def _draw_shapes(n: int, seed: int) -> tuple[Any, Any]:
    """``n`` noisy 16x16 grayscale images of 10 shape classes, drawn from ``seed`` alone.

    Classes: filled square, outlined square, disc, ring, triangle, horizontal, vertical and
    diagonal line, plus sign, X. Each has a random centre, size (half-extent 2-5 pixels) and
    intensity (0.5-1), on a background of Gaussian noise (sd 0.3), so the thin classes are not
    trivially separable and the loss falls from ln 10 over the run instead of in a few steps.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:IMAGE, 0:IMAGE].astype(np.float32)
    labels = rng.integers(N_CLASSES, size=n)
    images = rng.normal(0.0, 0.3, size=(n, IMAGE, IMAGE)).astype(np.float32)
    for i, k in enumerate(labels):
        h = rng.uniform(2.0, 5.0)
        cy, cx = rng.uniform(h, IMAGE - 1 - h, size=2)
        dy, dx = yy - cy, xx - cx
        cheb, r = np.maximum(abs(dy), abs(dx)), np.hypot(dy, dx)
        hline = (abs(dy) <= 0.5) & (abs(dx) <= h)
        vline = (abs(dx) <= 0.5) & (abs(dy) <= h)
        diag = (abs(dy - dx) <= 0.7) & (abs(dx) <= h)
        anti = (abs(dy + dx) <= 0.7) & (abs(dx) <= h)
        mask = (
            cheb <= h,
            (cheb <= h) & (cheb > h - 1),
            r <= h,
            (r <= h) & (r > h - 1.2),
            (abs(dy) <= h) & (abs(dx) <= (dy + h) / 2),
            hline,
            vline,
            diag,
            hline | vline,
            diag | anti,
        )[k]
        images[i] += rng.uniform(0.5, 1.0) * mask
    return images[:, None], labels


class Shapes:
    """The shapes task with ``Data``'s interface: a fixed pool of images (the same for every
    seed), a seeded held-out set and training batches of ``(images, labels)`` in a seeded order."""

    def __init__(self, seed: int, batch_size: int) -> None:
        import torch

        images, labels = _draw_shapes(N_IMAGES, seed=4321)
        x, y = torch.from_numpy(images), torch.from_numpy(labels)
        g = torch.Generator().manual_seed(10_000 + seed)
        perm = torch.randperm(N_IMAGES, generator=g)
        n_eval = 4 * batch_size
        self.eval_x, self.eval_y = x[perm[:n_eval]], y[perm[:n_eval]]
        self.train_x, self.train_y = x[perm[n_eval:]], y[perm[n_eval:]]
        self.batch_size = batch_size
        self.batches = _EpochOrder(len(self.train_y), seed, batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return self.batches.steps_per_epoch

    def next_batch(self) -> Any:
        idx = self.batches.next()
        return self.train_x[idx], self.train_y[idx]

    def eval_batches(self) -> list[Any]:
        xs, ys = self.eval_x.split(self.batch_size), self.eval_y.split(self.batch_size)
        return list(zip(xs, ys, strict=True))


def make_data(
    task: str, seed: int, batch_size: int, train_examples: int | None = None
) -> Data | Shapes:
    if task in ("shapes", "denoise"):
        return Shapes(seed, batch_size)
    return Data(task, seed, batch_size, train_examples)


# ---------------------------------------------------------------------------------- models
class RecurrentLM:
    """A two-layer LSTM or GRU language model (built lazily so --list does not import torch)."""

    @staticmethod
    def build(d: int, n_layer: int, cell: str = "lstm", vocab: int = len(VOCAB)) -> Any:
        import torch
        from torch import nn

        class _LSTM(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.emb = nn.Embedding(vocab, d)
                rnn = nn.GRU if cell == "gru" else nn.LSTM
                self.rnn = rnn(d, d, num_layers=n_layer, batch_first=True)
                self.out = nn.Linear(d, vocab)

            def forward(self, ids: Any) -> Any:
                h, _ = self.rnn(self.emb(ids[:, :-1]))
                logits = self.out(h)
                return torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1)
                )

        return _LSTM()


def _image_net(r: Regime) -> Any:
    """The shapes task's non-transformer networks: a small CNN, a ResNet, an MLP-Mixer or an MLP
    (and the denoise task's noise predictor)."""
    from torch import nn

    if r.arch == "resnet":

        class _Block(nn.Module):
            def __init__(self, c: int) -> None:
                super().__init__()
                self.body = nn.Sequential(
                    nn.Conv2d(c, c, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c),
                    nn.ReLU(),
                    nn.Conv2d(c, c, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c),
                )

            def forward(self, x: Any) -> Any:
                return nn.functional.relu(x + self.body(x))

        # A stem, two residual blocks (one before and one after halving the image), global
        # average pooling and a linear head: 39k params.
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            _Block(32),
            nn.MaxPool2d(2),
            _Block(32),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, N_CLASSES),
        )
    if r.arch == "mixer":

        class _Mixer(nn.Module):
            """An MLP-Mixer: 4x4 patches (16 tokens of 64 channels), two blocks that mix across
            the tokens and then across the channels, each after a LayerNorm, with residuals."""

            def __init__(self) -> None:
                super().__init__()
                d, n = 64, (IMAGE // 4) ** 2
                self.embed = nn.Conv2d(1, d, 4, stride=4)
                self.blocks = nn.ModuleList()
                for _ in range(2):
                    tokens = nn.Sequential(nn.Linear(n, 64), nn.GELU(), nn.Linear(64, n))
                    channels = nn.Sequential(nn.Linear(d, 128), nn.GELU(), nn.Linear(128, d))
                    self.blocks.append(
                        nn.ModuleList([nn.LayerNorm(d), tokens, nn.LayerNorm(d), channels])
                    )
                self.norm = nn.LayerNorm(d)
                self.head = nn.Linear(d, N_CLASSES)

            def forward(self, x: Any) -> Any:
                h = self.embed(x).flatten(2).transpose(1, 2)
                for norm1, tokens, norm2, channels in self.blocks:
                    h = h + tokens(norm1(h).transpose(1, 2)).transpose(1, 2)
                    h = h + channels(norm2(h))
                return self.head(self.norm(h).mean(dim=1))

        return _Mixer()
    if r.arch == "denoiser":
        # The denoise task's noise predictor: four 3x3 convolutions at full resolution over the
        # noisy image and a plane holding its noise level t / T (``d_model`` channels, 19k params
        # at 32), as a diffusion model's network predicts the noise that was added.
        c = r.d_model
        return nn.Sequential(
            nn.Conv2d(2, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, 1, 3, padding=1),
        )
    if r.arch == "cnn":
        # 2 conv layers (32 and 64 channels, each halving the image) and a linear head: 29k params.
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (IMAGE // 4) ** 2, N_CLASSES),
        )
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(IMAGE * IMAGE, r.d_model),
        nn.ReLU(),
        nn.Linear(r.d_model, r.d_model),
        nn.ReLU(),
        nn.Linear(r.d_model, N_CLASSES),
    )


def _decoder_settings(r: Regime) -> dict[str, Any]:
    """What the Llama-style decoders (Llama, Mixtral) share: the character vocabulary, width,
    depth, 4 heads without grouped keys, the window length and untied embeddings."""
    return {
        "vocab_size": _vocab_size(r),
        "hidden_size": r.d_model,
        "num_hidden_layers": r.n_layer,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": SEQ_LEN,
        "tie_word_embeddings": False,
    }


def _gpt_settings(r: Regime) -> dict[str, Any]:
    """What GPT-2, the original GPT and GPT-J share (the same config keys): the character
    vocabulary, the window length, width, depth, 4 heads and no dropout."""
    return {
        "vocab_size": _vocab_size(r),
        "n_positions": SEQ_LEN,
        "n_embd": r.d_model,
        "n_layer": r.n_layer,
        "n_head": 4,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
    }


def _more_decoders(r: Regime) -> Any:
    """Five more decoder layouts from transformers' own classes, at the corpus's width and depth
    with 4 heads and no dropout. Special-token ids play no part in the loss (every character is
    a target); OPT's and Gemma's pad id 0 leaves the embedding row of the character "0" at zero."""
    import transformers as tr

    v, d, n = _vocab_size(r), r.d_model, r.n_layer
    if r.arch == "opt":
        return tr.OPTForCausalLM(
            tr.OPTConfig(
                vocab_size=v,
                hidden_size=d,
                num_hidden_layers=n,
                ffn_dim=4 * d,
                num_attention_heads=4,
                max_position_embeddings=SEQ_LEN,
                dropout=0.0,
                attention_dropout=0.0,
                word_embed_proj_dim=d,
                pad_token_id=0,
                bos_token_id=0,
                eos_token_id=0,
            )
        )
    if r.arch == "bloom":
        return tr.BloomForCausalLM(
            tr.BloomConfig(
                vocab_size=v,
                hidden_size=d,
                n_layer=n,
                n_head=4,
                hidden_dropout=0.0,
                attention_dropout=0.0,
            )
        )
    if r.arch == "phi":
        return tr.PhiForCausalLM(
            tr.PhiConfig(
                vocab_size=v,
                hidden_size=d,
                intermediate_size=4 * d,
                num_hidden_layers=n,
                num_attention_heads=4,
                max_position_embeddings=SEQ_LEN,
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attention_dropout=0.0,
                partial_rotary_factor=0.5,
            )
        )
    if r.arch == "falcon":
        return tr.FalconForCausalLM(
            tr.FalconConfig(
                vocab_size=v,
                hidden_size=d,
                num_hidden_layers=n,
                num_attention_heads=4,
                multi_query=True,
                parallel_attn=True,
                hidden_dropout=0.0,
                attention_dropout=0.0,
                max_position_embeddings=SEQ_LEN,
            )
        )
    return tr.GemmaForCausalLM(
        tr.GemmaConfig(
            vocab_size=v,
            hidden_size=d,
            intermediate_size=4 * d,
            num_hidden_layers=n,
            num_attention_heads=4,
            num_key_value_heads=4,
            head_dim=d // 4,
            max_position_embeddings=SEQ_LEN,
            pad_token_id=0,
            bos_token_id=0,
            eos_token_id=0,
        )
    )


def _transformer(r: Regime) -> Any:
    if r.arch == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        return GPT2LMHeadModel(GPT2Config(**_gpt_settings(r)))
    if r.arch == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(intermediate_size=4 * r.d_model, **_decoder_settings(r))
        return LlamaForCausalLM(cfg)
    if r.arch == "vit":
        from transformers import ViTConfig, ViTForImageClassification

        cfg = ViTConfig(
            image_size=IMAGE,
            patch_size=4,
            num_channels=1,
            hidden_size=r.d_model,
            num_hidden_layers=r.n_layer,
            num_attention_heads=4,
            intermediate_size=4 * r.d_model,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            num_labels=N_CLASSES,
        )
        return ViTForImageClassification(cfg)
    if r.arch == "bart":
        from transformers import BartConfig, BartForConditionalGeneration

        cfg = BartConfig(
            vocab_size=len(VOCAB) + 3,
            d_model=r.d_model,
            encoder_layers=r.n_layer,
            decoder_layers=r.n_layer,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=4 * r.d_model,
            decoder_ffn_dim=4 * r.d_model,
            max_position_embeddings=SEQ2SEQ_LEN,
            dropout=0.0,
            attention_dropout=0.0,
            activation_dropout=0.0,
            pad_token_id=PAD_ID,
            bos_token_id=START_ID,
            eos_token_id=START_ID,
            decoder_start_token_id=START_ID,
            forced_eos_token_id=None,
        )
        return BartForConditionalGeneration(cfg)
    if r.arch == "t5":
        from transformers import T5Config, T5ForConditionalGeneration

        # T5's own layers: pre-LN with an RMS-style norm, relative position buckets, no
        # absolute positions; the same ids and shift of the labels as BART's.
        cfg = T5Config(
            vocab_size=len(VOCAB) + 3,
            d_model=r.d_model,
            d_kv=r.d_model // 4,
            d_ff=4 * r.d_model,
            num_layers=r.n_layer,
            num_decoder_layers=r.n_layer,
            num_heads=4,
            dropout_rate=0.0,
            pad_token_id=PAD_ID,
            eos_token_id=START_ID,
            decoder_start_token_id=START_ID,
        )
        return T5ForConditionalGeneration(cfg)
    if r.arch == "mixtral":
        from transformers import MixtralConfig, MixtralForCausalLM

        # Every layer's MLP is 4 SwiGLU experts of half the usual width, 2 routed per token;
        # the loss is the LM loss alone (no router load-balancing term, the config's default).
        cfg = MixtralConfig(
            intermediate_size=2 * r.d_model,
            num_local_experts=4,
            num_experts_per_tok=2,
            **_decoder_settings(r),
        )
        return MixtralForCausalLM(cfg)
    if r.arch == "neox":
        from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

        # Attention and MLP side by side on the same normed input (parallel residual), rotary
        # positions.
        cfg = GPTNeoXConfig(
            vocab_size=_vocab_size(r),
            hidden_size=r.d_model,
            num_hidden_layers=r.n_layer,
            num_attention_heads=4,
            intermediate_size=4 * r.d_model,
            max_position_embeddings=SEQ_LEN,
            use_parallel_residual=True,
            hidden_dropout=0.0,
            attention_dropout=0.0,
        )
        return GPTNeoXForCausalLM(cfg)
    if r.arch == "gpt1":
        from transformers import OpenAIGPTConfig, OpenAIGPTLMHeadModel

        # The original GPT: a post-LN decoder (the norm after each residual sum).
        return OpenAIGPTLMHeadModel(OpenAIGPTConfig(**_gpt_settings(r)))
    if r.arch in ("opt", "bloom", "phi", "falcon", "gemma"):
        return _more_decoders(r)
    if r.arch == "qwen2":
        from transformers import Qwen2Config, Qwen2ForCausalLM

        cfg = Qwen2Config(intermediate_size=4 * r.d_model, **_decoder_settings(r))
        return Qwen2ForCausalLM(cfg)
    if r.arch == "gptj":
        from transformers import GPTJConfig, GPTJForCausalLM

        # GPT-2's config keys: attention and MLP side by side on one norm, rotary on the first 8
        # of each head's 16 dimensions, untied embeddings.
        cfg = GPTJConfig(rotary_dim=8, tie_word_embeddings=False, **_gpt_settings(r))
        return GPTJForCausalLM(cfg)
    if r.arch == "mamba":
        from transformers import MambaConfig, MambaForCausalLM

        # A selective state-space model: no attention (transformers' reference PyTorch path on
        # the CPU, about 20 times slower a step than the GPT-2).
        cfg = MambaConfig(
            vocab_size=_vocab_size(r),
            hidden_size=r.d_model,
            num_hidden_layers=r.n_layer,
            state_size=16,
        )
        return MambaForCausalLM(cfg)
    from transformers import BertConfig, BertForMaskedLM

    cfg = BertConfig(
        vocab_size=len(VOCAB) + 1,
        hidden_size=r.d_model,
        num_hidden_layers=r.n_layer,
        num_attention_heads=4,
        intermediate_size=4 * r.d_model,
        max_position_embeddings=SEQ_LEN,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertForMaskedLM(cfg)


class Model:
    """The model of a regime and how it computes the loss of a batch."""

    def __init__(self, r: Regime, seed: int) -> None:
        import torch

        if r.task == "words" and r.arch in ("bert", "bart", "t5"):
            # Their mask, padding and start ids sit just past the character vocabulary.
            raise ValueError(f"{r.name}: the words task is for decoders and recurrent nets")
        torch.manual_seed(seed)
        self.r = r
        self.mask_gen = torch.Generator().manual_seed(30_000 + seed)
        if r.arch in ("lstm", "gru"):
            self.net = RecurrentLM.build(r.d_model, r.n_layer, r.arch, _vocab_size(r))
        elif r.arch in ("cnn", "resnet", "mlp", "mixer", "denoiser"):
            self.net = _image_net(r)
        else:
            self.net = _transformer(r)
        if r.init in ("full_ft", "lora"):
            self.net.load_state_dict(torch.load(_pretrained(r), weights_only=True))
            torch.manual_seed(seed)  # the adapters' init depends on the seed, not on pretraining
        if r.init == "lora":
            from peft import LoraConfig, get_peft_model

            cfg = LoraConfig(
                r=8,
                lora_alpha=16,
                target_modules=["c_attn", "c_proj"],
                lora_dropout=0.0,
                fan_in_fan_out=True,
            )
            self.net = get_peft_model(self.net, cfg)

    def params(self) -> list[Any]:
        return [p for p in self.net.parameters() if p.requires_grad]

    def loss(self, batch: Any) -> Any:
        """The loss of a batch: character ids, or ``(images, labels)`` for the image tasks."""
        import torch

        if self.r.task == "denoise":
            # DDPM's training loss: noise an image to a random level t and predict the noise
            # (the mean squared error, about 1 for a network that predicts nothing).
            images, _ = batch
            betas = torch.linspace(1e-4, 0.02, DIFFUSION_T)
            alpha_bar = torch.cumprod(1.0 - betas, dim=0)
            n = images.shape[0]
            t = torch.randint(0, DIFFUSION_T, (n,), generator=self.mask_gen)
            noise = torch.randn(images.shape, generator=self.mask_gen)
            a = alpha_bar[t].view(-1, 1, 1, 1)
            noisy = a.sqrt() * images + (1.0 - a).sqrt() * noise
            level = (t.float() / DIFFUSION_T).view(-1, 1, 1, 1).expand_as(images)
            predicted = self.net(torch.cat([noisy, level], dim=1))
            return torch.nn.functional.mse_loss(predicted, noise)
        if self.r.task == "shapes":
            images, labels = batch
            if self.r.arch == "vit":
                return self.net(pixel_values=images, labels=labels).loss
            return torch.nn.functional.cross_entropy(self.net(images), labels)
        ids = batch
        if self.r.arch in ("lstm", "gru"):
            return self.net(ids)
        if self.r.arch in ("bart", "t5"):
            # Restore the window: the encoder sees it with ~15% of its characters masked, the
            # decoder is trained on every character of the original.
            mask = torch.rand(ids.shape, generator=self.mask_gen) < 0.15
            inputs = torch.where(mask, torch.full_like(ids, MASK_ID), ids)
            return self.net(input_ids=inputs, labels=ids).loss
        if self.r.arch == "bert":
            mask = torch.rand(ids.shape, generator=self.mask_gen) < 0.15
            mask[:, 0] |= ~mask.any(dim=1)  # at least one masked token per row
            labels = torch.where(mask, ids, torch.full_like(ids, -100))
            inputs = torch.where(mask, torch.full_like(ids, len(VOCAB)), ids)
            return self.net(input_ids=inputs, labels=labels).loss
        return self.net(input_ids=ids, labels=ids).loss


def _pretrained(r: Regime) -> Path:
    """The pretrained checkpoint the fine-tuning regimes start from (trained once, cached)."""
    path = CACHE / f"pretrained_{r.arch}_{r.d_model}d_{r.n_layer}l.pt"
    if path.is_file():
        return path
    import torch
    from transformers import get_scheduler

    base = dataclasses.replace(r, init="scratch", task="code", lr=3e-3)
    model = Model(base, seed=0)
    data = Data("code", 0, r.batch_size)
    opt = torch.optim.AdamW(model.params(), lr=3e-3)
    sched = get_scheduler("cosine", opt, num_warmup_steps=50, num_training_steps=PRETRAIN_STEPS)
    for _ in range(PRETRAIN_STEPS):
        loss = model.loss(data.next_batch())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.params(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.net.state_dict(), tmp)
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------- training
def _finite(x: float) -> bool:
    return math.isfinite(x)


def _round(x: float, digits: int = 6) -> float | None:
    return float(f"{x:.{digits}g}") if math.isfinite(x) else None


def _lion(params: list[Any], lr: float, weight_decay: float) -> Any:
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), betas (0.9, 0.99).

    torch has none; this is the paper's update: the sign of an interpolation of the momentum
    and the gradient, decoupled weight decay, then the momentum's own update.
    """
    import torch

    class Lion(torch.optim.Optimizer):
        def __init__(self) -> None:
            super().__init__(params, {"lr": lr, "betas": (0.9, 0.99), "weight_decay": weight_decay})

        @torch.no_grad()
        def step(self, closure: Any = None) -> None:
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(torch.sign(m * b1 + p.grad * (1 - b1)), alpha=-group["lr"])
                    m.mul_(b2).add_(p.grad, alpha=1 - b2)

    return Lion()


def _lamb(params: list[Any], lr: float, weight_decay: float, beta2: float) -> Any:
    """LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning"), eps 1e-6.

    torch has none; this is the paper's update: Adam's bias-corrected step plus decoupled
    weight decay, scaled per tensor by the trust ratio ||w|| / ||step|| (1 when either is 0),
    so each tensor moves by about ``lr`` times its own norm.
    """
    import torch

    class Lamb(torch.optim.Optimizer):
        def __init__(self) -> None:
            super().__init__(
                params,
                {"lr": lr, "betas": (0.9, beta2), "eps": 1e-6, "weight_decay": weight_decay},
            )

        @torch.no_grad()
        def step(self, closure: Any = None) -> None:
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    st = self.state[p]
                    if not st:
                        st["t"] = 0
                        st["m"] = torch.zeros_like(p)
                        st["v"] = torch.zeros_like(p)
                    st["t"] += 1
                    t = st["t"]
                    st["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                    st["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                    step = (st["m"] / (1 - b1**t)) / ((st["v"] / (1 - b2**t)).sqrt() + group["eps"])
                    if group["weight_decay"]:
                        step.add_(p, alpha=group["weight_decay"])
                    w_norm, s_norm = p.norm(), step.norm()
                    trust = (w_norm / s_norm).item() if w_norm > 0 and s_norm > 0 else 1.0
                    p.add_(step, alpha=-group["lr"] * trust)

    return Lamb()


# Parameters Muon leaves to AdamW besides the vectors: the token and position embeddings and
# the output head, as Muon's authors and later users do.
_NOT_MUON = ("wte", "wpe", "embed_tokens", "lm_head", "shared")


def _muon_with_adamw(model: Model, lr: float, weight_decay: float, beta2: float) -> Any:
    """torch's Muon on the hidden weight matrices and AdamW on everything else, as one optimizer.

    Muon scales its orthogonalised update to the RMS of an AdamW update (torch's
    ``adjust_lr_fn="match_rms_adamw"``), so one learning rate and one schedule serve both, as
    in Moonshot's Muon recipe. The wrapper shares the two optimizers' parameter groups, so the
    scheduler's LR reaches both.
    """
    import torch

    named = [(n, p) for n, p in model.net.named_parameters() if p.requires_grad]
    mats = [p for n, p in named if p.ndim == 2 and not any(k in n for k in _NOT_MUON)]
    rest = [p for n, p in named if not (p.ndim == 2 and not any(k in n for k in _NOT_MUON))]

    class MuonWithAdamW(torch.optim.Optimizer):
        def __init__(self) -> None:
            self.muon = torch.optim.Muon(
                mats, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw"
            )
            self.adamw = torch.optim.AdamW(
                rest, lr=lr, betas=(0.9, beta2), weight_decay=weight_decay
            )
            super().__init__(mats + rest, {"lr": lr})
            # The inner optimizers' own groups: what the scheduler sets, they use.
            self.param_groups = self.muon.param_groups + self.adamw.param_groups

        @torch.no_grad()
        def step(self, closure: Any = None) -> None:
            self.muon.step()
            self.adamw.step()

    return MuonWithAdamW()


def train(job: Job) -> float:
    """Train one run and write its logs; returns the seconds it took."""
    import torch
    from transformers import get_scheduler

    t0 = time.time()
    r = job.regime
    torch.set_num_threads(1)
    model = Model(r, job.seed)
    data = make_data(r.task, job.seed, r.batch_size, r.train_examples)
    params = model.params()
    if r.optimizer == "sgd":
        opt: Any = torch.optim.SGD(
            params, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay, nesterov=r.nesterov
        )
    elif r.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=r.lr, alpha=0.99, weight_decay=r.weight_decay)
    elif r.optimizer == "nadam":
        opt = torch.optim.NAdam(
            params, lr=r.lr, betas=(0.9, r.adam_beta2), weight_decay=r.weight_decay
        )
    elif r.optimizer == "radam":
        # Adam with the variance rectification that replaces a warmup in its first steps.
        opt = torch.optim.RAdam(
            params, lr=r.lr, betas=(0.9, r.adam_beta2), weight_decay=r.weight_decay
        )
    elif r.optimizer == "adamax":
        opt = torch.optim.Adamax(
            params, lr=r.lr, betas=(0.9, r.adam_beta2), weight_decay=r.weight_decay
        )
    elif r.optimizer == "adagrad":
        opt = torch.optim.Adagrad(params, lr=r.lr, weight_decay=r.weight_decay)
    elif r.optimizer == "adadelta":
        # Its step is the ratio of two running RMS (of updates and of gradients), times the LR:
        # the first steps are small whatever the LR, a slow start of its own.
        opt = torch.optim.Adadelta(params, lr=r.lr, weight_decay=r.weight_decay)
    elif r.optimizer == "asgd":
        # SGD without momentum that also keeps an average of the weights (torch's defaults);
        # the loss is the current weights', as the Trainer logs it.
        opt = torch.optim.ASGD(params, lr=r.lr, weight_decay=r.weight_decay)
    elif r.optimizer == "lion":
        opt = _lion(params, r.lr, r.weight_decay)
    elif r.optimizer == "lamb":
        opt = _lamb(params, r.lr, r.weight_decay, r.adam_beta2)
    elif r.optimizer == "muon":
        opt = _muon_with_adamw(model, r.lr, r.weight_decay, r.adam_beta2)
    elif r.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        # The HF Trainer's `optim="adafactor"` with an explicit LR: no relative step sizes, so
        # the scheduler's LR is the LR used.
        opt = Adafactor(
            params, lr=r.lr, scale_parameter=False, relative_step=False, warmup_init=False
        )
    else:
        opt = torch.optim.AdamW(
            params,
            lr=r.lr,
            betas=(0.9, r.adam_beta2),
            weight_decay=r.weight_decay,
            amsgrad=r.amsgrad,
        )
    warmup = r.warmup_steps(job.share)
    sched = get_scheduler(
        r.scheduler,
        opt,
        num_warmup_steps=warmup,
        num_training_steps=r.steps,
        scheduler_specific_kwargs=dict(r.scheduler_kwargs) or None,
    )
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16) if r.fp16 else None

    out = job.path
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writer = None
    if r.fmt in ("tb", "eval"):
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(tmp / "runs"))
    log_history: list[dict[str, Any]] = []
    truth_loss: list[float | None] = []
    truth_lr: list[float] = []
    truth_gn: list[float | None] = []
    eval_every = max(1, r.steps // 15)
    window_raw: list[float] = []
    tr_loss = 0.0  # the Trainer's running sum since the last log (with its NaN filter)
    last_logged = 0
    for step in range(1, r.steps + 1):
        lr_used = opt.param_groups[0]["lr"]
        ids = data.next_batch()
        if scaler is not None:
            with torch.autocast("cpu", dtype=torch.float16):
                loss = model.loss(ids)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss = model.loss(ids)
            loss.backward()
        clip = r.max_grad_norm if r.max_grad_norm > 0 else float("inf")
        gn = float(torch.nn.utils.clip_grad_norm_(params, clip))
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        lv = float(loss.detach())
        truth_loss.append(_round(lv))
        truth_lr.append(lr_used)
        truth_gn.append(_round(gn))
        window_raw.append(lv)
        if _finite(lv):
            tr_loss += lv
        else:
            tr_loss += tr_loss / (1 + step - 1 - last_logged)
        if step % r.logging_steps == 0 or step == r.steps:
            n = step - last_logged
            hf_loss = tr_loss / n
            raw_mean = sum(window_raw) / len(window_raw)
            lr_now = sched.get_last_lr()[0]
            epoch = step / data.steps_per_epoch
            if writer is not None:
                if r.fmt == "tb":
                    writer.add_scalar("train/loss", raw_mean, step)
                    writer.add_scalar("train/grad_norm", gn, step)
                writer.add_scalar("train/learning_rate", lr_now, step)
                writer.add_scalar("train/epoch", epoch, step)
            else:
                log_history.append(
                    {
                        "epoch": round(epoch, 4),
                        "grad_norm": gn,
                        "learning_rate": lr_now,
                        "loss": round(hf_loss, 4),
                        "step": step,
                    }
                )
            tr_loss, last_logged, window_raw = 0.0, step, []
        if step % eval_every == 0 or step == r.steps:
            ev = _evaluate(model, data)
            if writer is not None:
                writer.add_scalar("eval/loss", ev, step)
            else:
                log_history.append(
                    {"epoch": round(step / data.steps_per_epoch, 4), "eval_loss": ev, "step": step}
                )
    config = {
        "learning_rate": r.lr,
        "lr_scheduler_type": r.scheduler,
        "warmup_steps": warmup,
        "max_steps": r.steps,
        "logging_steps": r.logging_steps,
        "max_grad_norm": r.max_grad_norm,
        "per_device_train_batch_size": r.batch_size,
        "gradient_accumulation_steps": 1,
        # The Trainer's `optim` names: the same words, but AdamW is `adamw_torch`, Lion
        # `lion_32bit`.
        "optim": {"adamw": "adamw_torch", "lion": "lion_32bit"}.get(r.optimizer, r.optimizer),
        "weight_decay": r.weight_decay,
        "adam_beta2": r.adam_beta2,
        "seed": job.seed,
        "fp16": r.fp16,
        "finetuning_type": "lora" if r.init == "lora" else "full",
    }
    if r.nesterov:
        # The Trainer has no argument for it; only these runs carry the key.
        config["sgd_nesterov"] = True
    # What the Trainer's `optim_args` would pass to the optimizer; only these runs carry it.
    if r.optimizer == "sgd" and r.momentum != 0.9:
        config["optim_args"] = f"momentum={r.momentum}"
    if r.amsgrad:
        config["optim_args"] = "amsgrad=True"
    if r.scheduler_kwargs:
        config["lr_scheduler_kwargs"] = dict(r.scheduler_kwargs)
    if writer is not None:
        writer.close()
        _anonymise_event_files(tmp)
        (tmp / "training_args.json").write_text(json.dumps(config, indent=2) + "\n")
    else:
        from transformers import TrainerState

        state = TrainerState(
            global_step=r.steps,
            max_steps=r.steps,
            logging_steps=r.logging_steps,
            eval_steps=eval_every,
            save_steps=r.steps,
            train_batch_size=r.batch_size,
            num_train_epochs=math.ceil(r.steps / data.steps_per_epoch),
            epoch=r.steps / data.steps_per_epoch,
            log_history=log_history,
        )
        state.save_to_json(str(tmp / "trainer_state.json"))
    seconds = time.time() - t0
    truth = {
        "regime": r.name,
        "group": job.group,
        "seed": job.seed,
        "warmup_share": job.share,
        "warmup_steps": warmup,
        "config": config,
        "format": r.fmt,
        "loss": truth_loss,
        "learning_rate": [_round(x, 8) for x in truth_lr],
        "grad_norm": truth_gn,
        "seconds": round(seconds, 2),
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
    }
    # The truth file last: its presence marks a finished run (resumability).
    write_truth(tmp, truth)
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return seconds


def write_truth(run_dir: Path, truth: dict[str, Any]) -> None:
    text = json.dumps(truth, separators=(",", ":")) + "\n"
    (run_dir / TRUTH).write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


def read_truth(run_dir: Path) -> dict[str, Any]:
    """The per-step loss, LR and grad norm a run recorded (the labels' ground truth)."""
    return json.loads(gzip.decompress((run_dir / TRUTH).read_bytes()).decode("utf-8"))


def _anonymise_event_files(run_dir: Path) -> None:
    """Event file names carry the writer's host name: the corpus names no machine."""
    host = socket.gethostname()
    for f in run_dir.rglob("events.out.tfevents.*"):
        if f".{host}." in f.name:
            f.rename(f.with_name(f.name.replace(f".{host}.", ".localhost.")))


def _evaluate(model: Model, data: Data | Shapes) -> float:
    import torch

    # BatchNorm evaluates with its running statistics, as a Trainer's evaluation does; the
    # other models have no layer that differs between the two modes.
    batch_norm = model.r.arch == "resnet"
    if batch_norm:
        model.net.eval()
    # The denoise task draws its noise from the run's generator: an evaluation uses the same
    # fixed draws every time (and leaves the training's draws as they were).
    train_gen = model.mask_gen
    if model.r.task == "denoise":
        model.mask_gen = torch.Generator().manual_seed(40_000)
    with torch.no_grad():
        losses = [float(model.loss(b)) for b in data.eval_batches()]
    model.mask_gen = train_gen
    if batch_norm:
        model.net.train()
    mean = sum(losses) / len(losses)
    return mean if math.isfinite(mean) else float("nan")


def jobs(only: list[str] | None = None) -> list[Job]:
    out = []
    # Seed by seed: a generation cut short still holds whole groups of every regime.
    for seed in SEEDS:
        for r in REGIMES:
            if only and r.name not in only:
                continue
            for share in WARMUPS:
                out.append(Job(r, seed, share))
    return out


def _work(job: Job) -> tuple[str, float | None, str]:
    try:
        return f"{job.group}/{job.run_name}", train(job), ""
    except Exception as exc:  # a run that crashes is reported, the others go on
        return f"{job.group}/{job.run_name}", None, f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--only", action="append", help="regime name (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the regimes and exit")
    ap.add_argument("--limit", type=int, default=None, help="train at most N missing runs")
    args = ap.parse_args(argv)
    todo = jobs(args.only)
    if args.list:
        for r in REGIMES:
            if not args.only or r.name in args.only:
                print(
                    f"{r.name:24s} {r.arch:6s} {r.optimizer:5s} lr={r.lr:<7g} {r.scheduler:21s} "
                    f"clip={r.max_grad_norm:<5g} log={r.logging_steps:<3d} {r.init:8s} {r.fmt}"
                )
        return 0
    missing = [j for j in todo if not (j.path / TRUTH).is_file()]
    print(
        f"{len(todo)} runs, {len(todo) - len(missing)} on disk, {len(missing)} to train", flush=True
    )
    if args.limit is not None:
        missing = missing[: args.limit]
    # The pretrained checkpoints first, once, before workers race for them.
    for r in {j.regime.arch: j.regime for j in missing if j.regime.init != "scratch"}.values():
        _pretrained(r)
    t0 = time.time()
    failed = 0
    ctx = mp.get_context("spawn")
    if args.jobs > 1:
        with ctx.Pool(args.jobs, maxtasksperchild=8) as pool:
            results = pool.imap_unordered(_work, missing)
            failed = _report(results, len(missing), t0)
    else:
        failed = _report(map(_work, missing), len(missing), t0)
    print(f"done in {time.time() - t0:.0f} s, {failed} failed", flush=True)
    return 1 if failed else 0


def _report(results: Any, n: int, t0: float) -> int:
    failed = 0
    for i, (name, secs, err) in enumerate(results, 1):
        if secs is None:
            failed += 1
            print(f"[{i}/{n}] {name} FAILED {err}", flush=True)
        else:
            print(f"[{i}/{n}] {name} {secs:.1f} s (elapsed {time.time() - t0:.0f} s)", flush=True)
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
