"""The GitHub workflows' venv cache and the Makefile's venv: a cached venv links to the exact Python
that made it, so its cache key names that version, and `make` rebuilds a venv whose python no
longer runs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTION = ROOT / ".github" / "actions" / "chapter" / "action.yml"
JOB_VERSION = "${{ steps.python.outputs.python-version }}"


def venv_cache_keys(steps: list[dict]) -> list[str]:
    return [step["with"]["key"] for step in steps
            if str(step.get("uses", "")).startswith("actions/cache@")
            and step["with"]["path"].strip() == ".venv"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_each_job_keys_its_venv_by_the_exact_python(path):
    jobs = yaml.safe_load(path.read_text())["jobs"]
    for name, job in jobs.items():
        steps = job.get("steps", [])
        pythons = [s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python@")]
        chapters = [s for s in steps if s.get("uses") == "./.github/actions/chapter"]
        keys = venv_cache_keys(steps)
        if keys or chapters:  # the job makes or restores a venv
            assert [s.get("id") for s in pythons] == ["python"], name
        for key in keys:
            assert f"-py{JOB_VERSION}-" in key and "py3." not in key, (name, key)
        for step in chapters:
            assert step["with"]["python-version"] == JOB_VERSION, name


def test_the_chapter_action_keys_its_venv_by_the_python_it_is_given():
    action = yaml.safe_load(ACTION.read_text())
    assert action["inputs"]["python-version"]["required"] is True
    (key,) = venv_cache_keys(action["runs"]["steps"])
    assert "-py${{ inputs.python-version }}-" in key and "py3." not in key


@pytest.fixture
def installed_venv(tmp_path):
    """A copy of the Makefile beside a venv marked as installed, newer than the pins."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("requirements.txt", "pyproject.toml"):
        (tmp_path / name).write_text("")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    return tmp_path


def make_dry_run(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-n", ".venv/bin/.installed"], cwd=folder,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LC_ALL": "C"})  # make's messages in English


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_keeps_a_working_venv_and_rebuilds_a_broken_one(installed_venv):
    python = installed_venv / ".venv" / "bin" / "python"
    python.symlink_to(sys.executable)
    (installed_venv / ".venv" / "bin" / ".installed").touch()
    assert "is up to date" in make_dry_run(installed_venv).stdout
    python.unlink()
    python.symlink_to(installed_venv / "gone" / "python3.11")  # the runner's Python moved on
    out = make_dry_run(installed_venv).stdout
    assert "rm -rf .venv" in out and "pip install --quiet -r requirements.txt" in out
