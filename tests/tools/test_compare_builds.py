import subprocess
import sys
from pathlib import Path

import pandas as pd
from posinfo.book.results import Claim, write_claims, write_results

TOOL = Path(__file__).resolve().parents[2] / "tools" / "compare_builds.py"


def _build(root: Path, seed: int, verdicts: list[str]) -> Path:
    folder = root / "01_a"
    write_results(pd.DataFrame({"value": [1.0]}), folder, profile="default", seed=seed)
    write_claims([Claim(f"A{i}", "c", "p", "o", v, "r", 0.1, (0.0, 0.2), 3, "fails")
                  for i, v in enumerate(verdicts)], folder)
    return root


def test_compare_builds_prints_both_seeds_and_the_agreement(tmp_path):
    first = _build(tmp_path / "s0", 0, ["holds", "fails"])
    second = _build(tmp_path / "s11", 11, ["holds", "inconclusive"])
    out = subprocess.run([sys.executable, str(TOOL), str(first), str(second)], capture_output=True,
                         text=True, check=True).stdout
    assert "1 of 2 claims agree; 1 are inconclusive in one build only; 0 hold" in out
    assert "verdict (first: seed 0)" in out and "verdict (second: seed 11)" in out


def test_compare_builds_refuses_a_folder_without_claims(tmp_path):
    first = _build(tmp_path / "s0", 0, ["holds"])
    run = subprocess.run([sys.executable, str(TOOL), str(first), str(tmp_path / "empty")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "holds no <chapter>/claims.json" in run.stderr
