import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from posinfo.book import report
from posinfo.book.results import Claim, package_versions, write_claims, write_results


def _claim(cid: str, holds: bool | str, claim: str = "c", paper: str = "p", ours: str = "o",
           control: str = "fails") -> Claim:
    """A claim with the given verdict (True: holds, False: fails, or the verdict itself)."""
    verdict = holds if isinstance(holds, str) else ("holds" if holds else "fails")
    return Claim(cid, claim, paper, ours, verdict, "effect: rule", 0.5, (0.4, 0.6), 3, control)


def _chapter(root: Path, chapter: str, profile: str, claims: list[Claim], wall: float | None = None) -> None:
    folder = root / chapter
    write_results(pd.DataFrame({"value": [1.0]}), folder, profile=profile, seed=0)
    write_claims(claims, folder)
    if wall is not None:
        (folder / "wall_seconds.txt").write_text(str(wall))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    _chapter(tmp_path, "01_a", "default", [_claim("A1", True, "a | b", "0.5", "0.9"),
                                           _claim("A2", False, "c", "1", "0")], wall=90)
    _chapter(tmp_path, "02_b", "default", [_claim("B1", True, "d", "2", "2"),
                                           _claim("B2", "inconclusive", "e", "3", "3")])
    return tmp_path


def test_read_claims_takes_profile_and_seed_from_results(results: Path) -> None:
    claims = report.read_claims(results)
    assert list(claims.id) == ["A1", "A2", "B1", "B2"]
    assert set(claims.profile) == {"default"} and set(claims.seed) == {0}
    assert list(claims.holds) == [True, False, True, False]
    assert list(claims.verdict) == ["holds", "fails", "holds", "inconclusive"]


def test_read_claims_rejects_malformed_file(tmp_path: Path) -> None:
    (tmp_path / "01_a").mkdir()
    (tmp_path / "01_a" / "claims.json").write_text(json.dumps([{"id": "A1", "holds": True}]))
    with pytest.raises(ValueError, match="expected a list"):
        report.read_claims(tmp_path)


def test_scorecard_counts_links_and_escapes(results: Path) -> None:
    titles = {"01_a": "1. A", "02_b": "2. B", "03_c": "3. C"}
    page = report.scorecard_markdown(report.read_claims(results), titles, {"01_a": "tested"})
    # holds, fails and inconclusive are counted apart; inconclusive is never folded into holds
    assert "of 4 claims in 2 chapters, 2 hold, 1 fail, 1 inconclusive" in page
    assert "| 1. A | 1 hold, 1 fail, 0 inconclusive |" in page and "| 3. C | not run |" in page
    assert "0.5 [0.4, 0.6], n = 3" in page and "**inconclusive** (control: fails)" in page
    assert "## [1. A](01_a.ipynb#tested)" in page and "## [2. B](02_b.ipynb)" in page
    assert "a \\| b" in page  # a pipe in a claim does not break the table
    assert "**fails** (control: fails)" in page
    assert "not run for this build" in page.split("## [3. C]")[1]


def test_scorecard_has_a_column_pair_per_profile(results: Path, tmp_path: Path) -> None:
    paper = tmp_path / "paper_results"
    _chapter(paper, "01_a", "paper", [_claim("A1", False, "a | b", "0.5", "0.4")])
    claims = pd.concat([report.read_claims(results), report.read_claims(paper)])
    page = report.scorecard_markdown(claims, {"01_a": "1. A"})
    assert ("ours (default) | effect [90% interval], n (default) | verdict (default) | ours (paper)"
            in page)
    row = next(line for line in page.splitlines() if line.startswith("| A2"))
    assert row.endswith("| not run |")  # A2 was not run under the paper profile


def test_heading_anchor_follows_myst() -> None:
    assert report.heading_anchor("## The paper's findings, tested") == "the-papers-findings-tested"
    assert report.heading_anchor("## The findings, tested") == "the-findings-tested"


def test_chapter_runs_and_appendix(results: Path) -> None:
    runs = report.chapter_runs(results, {"01_a": "1. A", "02_b": "2. B"})
    assert runs.wall_minutes.iloc[0] == pytest.approx(1.5) and pd.isna(runs.wall_minutes.iloc[1])
    page = report.appendix_markdown(runs, {"torch": "2.0"}, {"CPU cores": "2"}, built="today")
    threads, machine, code = runs.threads.iloc[0], runs.machine.iloc[0], runs.code.iloc[0]
    assert threads >= 1 and code and machine.startswith(("CPU: ", "GPU: "))  # from the manifest
    assert f"| 1. A | default | 0 | {threads} | {machine} | {code} | 1.5 min |" in page
    assert "not timed" in page
    assert "| CPU cores | 2 |" in page
    recorded = runs.packages.iloc[0]["torch"]  # the manifest records the chapter's own versions
    assert recorded == torch.__version__.split("+")[0] and f"| torch | 2.0 | 1. A: {recorded};" in page
    same = report.appendix_markdown(runs, {"torch": recorded}, {}, built="today")
    assert f"| torch | {recorded} |  |" in same


def test_package_versions_reads_pins(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\npandas==1.0\nno-such-package-xyz==1.0\n")
    versions = package_versions(req)
    assert versions["pandas"] == pd.__version__ and versions["no-such-package-xyz"] == "missing"


def test_benchmark_page_with_and_without_measurement(results: Path) -> None:
    runs = report.chapter_runs(results, {"01_a": "1. A"})
    assert "was not run" in report.benchmark_markdown(None, runs)
    bench = dict(setting="vgg16", speedup=5.0,
                 rows=[dict(readout="cached", seconds=6.3, SPC=0.99), dict(readout="online", seconds=31.5, SPC=0.99)])
    page = report.benchmark_markdown(bench, runs)
    assert "**5.0x**" in page and "| cached | 6.3 | 0.99 |" in page


def _scale_entry(fits: dict[str, bool], split: bool, hours: float = 1.0) -> dict:
    """An entry of paper_scale.json with the given verdicts."""
    return dict(gpu_gb=10.0, ram_gb=20.0, disk_gb=150.0 if not fits["disk_gb"] else 30.0, gpu_hours=hours,
                fits=fits, fits_targets=all(fits.values()), fits_when_split=split, jobs=40,
                largest_job_gpu_hours=0.5, targets=dict(gpu_gb=80, ram_gb=100, disk_gb=100, gpu_hours=6),
                throughput_tflops=dict(network=50.0, fp32_gram=25.0, fp64_factorisations=10.0),
                batch_overhead_ms=5.0, assumptions=dict(gpu_hours="1 PFLOP at 50 TFLOP/s"),
                notes=["a note"])


def test_benchmark_page_shows_the_scale_model_when_it_was_written(results: Path) -> None:
    runs = report.chapter_runs(results, {"01_a": "1. A"})
    ok = dict(gpu_gb=True, ram_gb=True, disk_gb=True, gpu_hours=True)
    scale = {"01_a": _scale_entry(ok, True),
             "02_b": _scale_entry(ok | dict(gpu_hours=False), True, hours=30.0),
             "03_c": _scale_entry(ok | dict(disk_gb=False), False)}
    assert "paper profile at scale" not in report.benchmark_markdown(None, runs)
    page = report.benchmark_markdown(None, runs, scale)
    assert "was not run" in page and "## The paper profile at scale" in page
    assert "| 01_a | 10.0 | 20.0 | 30.0 | 1.0 | 0.5 | yes |" in page
    assert "| 02_b | 10.0 | 20.0 | 30.0 | 30.0 | 0.5 | as 40 jobs |" in page
    assert "| 03_c | 10.0 | 20.0 | 150.0 | 1.0 | 0.5 | no: disk (GB) |" in page
    assert "50 TFLOP/s sustained" in page and "- **03_c**: GPU hours: 1 PFLOP at 50 TFLOP/s. a note" in page
    assert page.index("paper profile at scale") < page.index("## Chapters")


def test_hardware_reports_the_chapters_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSINFO_CHAPTER_THREADS", "3")
    assert report.hardware()["torch threads per chapter"] == "3"
    monkeypatch.delenv("POSINFO_CHAPTER_THREADS")
    assert report.hardware()["torch threads per chapter"] == "not recorded"


def test_verdict_agreement_of_two_builds(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _chapter(first, "01_a", "default", [_claim("A1", True), _claim("A2", False), _claim("A3", True)])
    _chapter(second, "01_a", "default", [_claim("A1", True), _claim("A2", "inconclusive"),
                                         _claim("A3", False)])
    table = report.verdict_agreement(report.read_claims(first), report.read_claims(second))
    assert table.agree.tolist() == ["yes", "inconclusive on one side", "NO"]
    page = report.agreement_markdown(report.read_claims(first), report.read_claims(second))
    assert "1 of 3 claims agree; 1 are inconclusive in one build only; 1 hold in one build" in page


def test_verdict_agreement_names_claims_run_in_one_build_only(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _chapter(first, "01_a", "default", [_claim("A1", True), _claim("A2", True)])
    _chapter(second, "01_a", "default", [_claim("A1", True)])
    table = report.verdict_agreement(report.read_claims(first), report.read_claims(second))
    assert table.agree.tolist() == ["yes", "not run in one build"]
