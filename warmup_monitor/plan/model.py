"""What the plan says: step counts, the warmup, guide checks, findings and recommendations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .config import TrainingConfig

__all__ = [
    "GuideCheck",
    "PlanFinding",
    "PlanResult",
    "Recommendation",
    "Rounding",
    "Severity",
    "StepPlan",
    "WarmupPlan",
    "fmt_pct",
    "fmt_size",
    "fmt_value",
]

Severity = Literal["error", "warning", "info"]
Rounding = Literal["ceil", "floor"]


@dataclass(frozen=True)
class StepPlan:
    """Batch and step counts, each with the rule that produced it."""

    effective_batch_size: int
    batches_per_epoch: int | None
    steps_per_epoch: int | None
    total_steps: int | None
    batches_rule: str
    steps_per_epoch_rule: str
    total_steps_rule: str
    guide_steps_per_epoch: float | None  # samples / effective batch, the guide's estimate
    epochs_run: int | None  # epochs the Trainer will iterate (max_steps may cut or extend them)
    formula: str  # total steps as a function of the sample count N


@dataclass(frozen=True)
class WarmupPlan:
    """Warmup length the Trainer will use, its share of the run and the rule that applied."""

    steps: int | None
    share: float | None
    rule: str
    setting: str  # the config key that decided it ("warmup_steps", "warmup_ratio" or "none")


@dataclass(frozen=True)
class GuideCheck:
    """Where the warmup sits in one guide table row."""

    basis: str  # "share", "dataset", "model", "method", "adam"
    label: str
    value: float | None
    low: float | None
    high: float | None
    placement: Literal["below", "within", "above", "unknown"]
    note: str = ""


@dataclass(frozen=True)
class PlanFinding:
    """One problem or remark about the config."""

    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class Recommendation:
    """A concrete change: the parameter, its current and suggested value, and why."""

    parameter: str
    current: Any
    suggested: Any
    reason: str

    @property
    def text(self) -> str:
        if self.suggested is None:
            return f"remove {self.parameter}: {self.reason}"
        change = f"{fmt_value(self.current)} -> {fmt_value(self.suggested)}"
        return f"{self.parameter} {change}: {self.reason}"


@dataclass(frozen=True)
class PlanResult:
    """Everything ``warmup-monitor plan`` prints."""

    config: TrainingConfig
    samples: int | None
    samples_source: str
    gpus: int
    rounding: Rounding
    model_size_b: float | None
    model_size_source: str
    steps: StepPlan
    warmup: WarmupPlan
    checks: tuple[GuideCheck, ...]
    findings: tuple[PlanFinding, ...]
    recommendations: tuple[Recommendation, ...]

    @property
    def exit_code(self) -> int:
        """1 when any finding is an error, else 0."""
        return 1 if any(f.severity == "error" for f in self.findings) else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with stable keys (see ``render_json``)."""
        cfg = self.config
        return {
            "schema": "warmup-monitor/plan@1",
            "config": {
                "path": cfg.path,
                "format": cfg.source_format,
                "model_name_or_path": cfg.model_name_or_path,
                "stage": cfg.stage,
                "finetuning_type": cfg.finetuning_type,
                "method": cfg.method,
                "learning_rate": cfg.learning_rate,
                "lr_scheduler_type": cfg.lr_scheduler_type,
                "lr_scheduler_kwargs": dict(cfg.lr_scheduler_kwargs),
                "per_device_train_batch_size": cfg.per_device_train_batch_size,
                "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
                "num_train_epochs": cfg.num_train_epochs,
                "max_steps": cfg.max_steps,
                "warmup_steps": cfg.warmup_steps,
                "warmup_ratio": cfg.warmup_ratio,
                "adam_beta2": cfg.adam_beta2,
                "dataloader_drop_last": cfg.dataloader_drop_last,
            },
            "inputs": {
                "samples": self.samples,
                "samples_source": self.samples_source,
                "gpus": self.gpus,
                "rounding": self.rounding,
                "model_size_b": self.model_size_b,
                "model_size_source": self.model_size_source,
            },
            "steps": {
                "effective_batch_size": self.steps.effective_batch_size,
                "batches_per_epoch": self.steps.batches_per_epoch,
                "steps_per_epoch": self.steps.steps_per_epoch,
                "total_steps": self.steps.total_steps,
                "epochs_run": self.steps.epochs_run,
                "guide_steps_per_epoch": self.steps.guide_steps_per_epoch,
                "batches_rule": self.steps.batches_rule,
                "steps_per_epoch_rule": self.steps.steps_per_epoch_rule,
                "total_steps_rule": self.steps.total_steps_rule,
                "formula": self.steps.formula,
            },
            "warmup": {
                "steps": self.warmup.steps,
                "share": self.warmup.share,
                "rule": self.warmup.rule,
                "setting": self.warmup.setting,
            },
            "guide": [
                {
                    "basis": c.basis,
                    "label": c.label,
                    "value": c.value,
                    "low": c.low,
                    "high": c.high,
                    "placement": c.placement,
                    "note": c.note,
                }
                for c in self.checks
            ],
            "findings": [
                {"code": f.code, "severity": f.severity, "message": f.message}
                for f in self.findings
            ],
            "recommendations": [
                {
                    "parameter": r.parameter,
                    "current": r.current,
                    "suggested": r.suggested,
                    "reason": r.reason,
                }
                for r in self.recommendations
            ],
            "exit_code": self.exit_code,
        }


def fmt_value(value: Any) -> str:
    """Numbers as a config would write them: 5e-05 -> 5e-5, 3.0 -> 3, 0.1 -> 0.1."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if 0 < abs(value) < 1e-3:
            mantissa, exponent = f"{value:.3e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:.6g}"
    return str(value)


def fmt_pct(share: float) -> str:
    """A share as a percentage: 0.1 -> 10%, 0.059 -> 5.9%."""
    pct = share * 100
    return f"{pct:.0f}%" if pct >= 10 or pct == 0 or pct.is_integer() else f"{pct:.1f}%"


def fmt_size(size: float | None) -> str:
    """A model size in billions as 7B / 350M."""
    if size is None:
        return "unknown"
    return f"{size * 1000:g}M" if size < 1 else f"{size:g}B"
