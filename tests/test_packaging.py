"""Packaging: version, typing markers, import boundaries and the CLI's error contract."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import detectors
import warmup_monitor
from warmup_monitor import InputError, find_runs, read_run
from warmup_monitor.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_matches_pyproject() -> None:
    """The package version is the one in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
    assert match is not None and warmup_monitor.__version__ == match.group(1)


@pytest.mark.parametrize("package", [warmup_monitor, detectors])
def test_packages_are_typed(package) -> None:
    """Both packages ship a py.typed marker and declare it as package data."""
    assert (Path(package.__file__).parent / "py.typed").is_file()
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf'^{package.__name__} = \[[^\]]*"py.typed"', text, re.MULTILINE)


def test_detectors_import_alone() -> None:
    """detectors needs neither pandas nor warmup_monitor (it is pure numpy/scipy)."""
    code = (
        "import sys, detectors; "
        "print(sorted(m for m in ('pandas', 'warmup_monitor') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


HEAVY = ("numpy", "pandas", "scipy", "matplotlib", "yaml", "detectors")


def _loaded_after(args: list[str], tmp_path: Path) -> set[str]:
    """Top-level packages of :data:`HEAVY` loaded by running the CLI with ``args``."""
    code = (
        "import json, sys\n"
        "from warmup_monitor.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_loads_no_heavy_library(tmp_path: Path) -> None:
    """``--help`` starts without numpy, pandas, scipy, matplotlib or the detectors."""
    assert _loaded_after(["--help"], tmp_path) == set()
    assert _loaded_after(["plan", "--help"], tmp_path) <= {"numpy", "yaml"}


def test_a_json_report_does_not_load_matplotlib(tmp_path: Path) -> None:
    """A JSON report never imports matplotlib, and it builds no pandas frame, so it does not
    import pandas either."""
    run = ROOT / "sample_logs" / "healthy"
    loaded = _loaded_after(["report", str(run), "--format", "json"], tmp_path)
    assert "matplotlib" not in loaded and "pandas" not in loaded
    assert {"numpy", "detectors"} <= loaded  # the report did read and diagnose the run


def test_html_pages_do_not_load_matplotlib(tmp_path: Path) -> None:
    """The HTML report and comparison draw their SVG directly: no matplotlib either (only
    ``plan --plot`` uses it, for PNG)."""
    page = tmp_path / "r.html"
    loaded = _loaded_after(["report", str(ROOT / "sample_logs"), "--html", str(page)], tmp_path)
    assert "matplotlib" not in loaded and page.stat().st_size > 0
    sweep = ROOT / "tests" / "fixtures" / "sweep"
    cmp_page = tmp_path / "c.html"
    loaded = _loaded_after(["compare", str(sweep), "--html", str(cmp_page)], tmp_path)
    assert "matplotlib" not in loaded and cmp_page.stat().st_size > 0


def test_version_and_help() -> None:
    """--version prints the version; --help lists the commands."""
    runner = CliRunner()
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0
    assert version.output.strip() == f"warmup-monitor, version {warmup_monitor.__version__}"
    helped = runner.invoke(main, ["--help"])
    assert helped.exit_code == 0
    for name in ("report", "watch", "plan"):
        assert name in helped.output


def test_console_script_runs() -> None:
    """``python -m warmup_monitor --version`` works in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-m", "warmup_monitor", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0 and warmup_monitor.__version__ in out.stdout


def test_installed_entry_point() -> None:
    """The ``warmup-monitor`` script answers --help without a traceback."""
    script = shutil.which("warmup-monitor")
    if script is None:
        pytest.skip("package not installed as a script")
    out = subprocess.run([script, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "report" in out.stdout and "Traceback" not in out.stderr


def test_missing_path_errors_at_library_level(tmp_path: Path) -> None:
    """A missing path or an empty folder is an InputError with a one-line message."""
    with pytest.raises(InputError, match="does not exist") as err:
        read_run(tmp_path / "missing")
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="empty directory"):
        find_runs(tmp_path)


@pytest.fixture
def probe_command():
    """A throw-away command on the real group that reads one run, removed afterwards."""

    @click.command("probe-read", hidden=True)
    @click.argument("path")
    def probe(path: str) -> None:
        click.echo(len(read_run(path).scalars))

    main.add_command(probe)
    yield "probe-read"
    main.commands.pop("probe-read", None)


@pytest.mark.parametrize("what", ["missing", "empty", "garbage"])
def test_cli_turns_errors_into_one_line(tmp_path: Path, probe_command: str, what: str) -> None:
    """Library errors reach the user as one ``Error:`` line on stderr, exit 2, no traceback."""
    target = tmp_path / "run"
    if what != "missing":
        target.mkdir()
    if what == "garbage":
        (target / "events.out.tfevents.1.host").write_bytes(b"\x00" * 40)
    result = CliRunner().invoke(main, [probe_command, str(target)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", ["report", "watch"])
def test_commands_reject_a_missing_path_in_one_line(tmp_path: Path, command: str) -> None:
    """The real commands answer a missing path with one ``Error:`` line and exit 2."""
    if command not in main.commands:
        pytest.skip(f"no {command} command in this build")
    result = CliRunner().invoke(main, [command, str(tmp_path / "missing")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "does not exist" in lines[0]
    assert "Traceback" not in result.output


def test_every_subpackage_goes_into_the_wheel() -> None:
    """The packages setuptools is told to build are every folder of the source tree (an
    explicit list of the two top-level packages left readers/, render/ … out of the wheel)."""
    tomllib = pytest.importorskip("tomllib")
    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    find = config.get("packages", {})
    assert isinstance(find, dict), "packages must be found, not listed"
    built = set(find_packages(str(ROOT), **find["find"]))
    present = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("warmup_monitor", "detectors")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert present <= built
