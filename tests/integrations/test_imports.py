"""The integrations import their framework only where it is used, and say when it is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_package_and_the_shared_core_import_no_framework() -> None:
    proc = _python(
        "import sys, warmup_monitor, warmup_monitor.integrations\n"
        "from warmup_monitor.integrations import LiveMonitor\n"
        "m = LiveMonitor('x', print_alerts=False)\n"
        "m.log(1, {'loss': 2.0, 'learning_rate': 1e-4})\n"
        "bad = [n for n in ('torch', 'transformers', 'lightning') if n in sys.modules]\n"
        "print(bad)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "blocked", "hint"),
    [
        ("warmup_monitor.integrations.hf", "transformers", "pip install transformers"),
        ("warmup_monitor.integrations.lightning", "lightning", "pip install lightning"),
    ],
)
def test_a_missing_framework_is_a_clear_import_error(module: str, blocked: str, hint: str) -> None:
    proc = _python(
        f"import sys\nsys.modules[{blocked!r}] = None\n"
        f"sys.modules[{blocked + '.pytorch'!r}] = None\n"
        f"try:\n    import {module}\nexcept ImportError as err:\n    print(err)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{module} needs the {blocked} package" in proc.stdout
    assert hint in proc.stdout
