import importlib.util
from pathlib import Path

import nbformat

TOOL = Path(__file__).resolve().parents[2] / "tools" / "build_book.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("build_book", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_executed_chapters_fold_parameters_and_drop_progress_bars(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell('profile = "default"', metadata={"tags": ["injected-parameters"]})
    work = nbformat.v4.new_code_cell("x = 1")
    work.outputs = [nbformat.v4.new_output("display_data", data={load_tool().WIDGET: {}}),
                    nbformat.v4.new_output("stream", text="kept")]
    nb.cells = [params, injected, work]
    path = tmp_path / "ch.ipynb"
    nbformat.write(nb, path)
    load_tool().tidy_executed(path)
    cells = nbformat.read(path, as_version=4).cells
    assert [c.metadata.tags for c in cells] == [["parameters", "hide-cell"],
                                               ["injected-parameters", "hide-cell"], []]
    assert [o.output_type for o in cells[2].outputs] == ["stream"]


def test_each_chapter_offers_its_results_for_download(tmp_path):
    staging, results = tmp_path / "source", tmp_path / "results"
    (staging / "book").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), staging / "book" / "01_x.ipynb")
    (results / "01_x").mkdir(parents=True)
    (results / "01_x" / "results.csv").write_text("value\n1\n")
    (results / "01_x" / "claims.json").write_text("[]\n")
    (results / "01_x" / "manifest.json").write_text("{}\n")
    load_tool().add_downloads(staging, results)
    assert (staging / "book" / "_results" / "01_x" / "claims.json").read_text() == "[]\n"
    last = nbformat.read(staging / "book" / "01_x.ipynb", as_version=4).cells[-1].source
    assert "{download}`results.csv <_results/01_x/results.csv>`" in last
    assert "{download}`claims.json <_results/01_x/claims.json>`" in last
    assert "{download}`manifest.json <_results/01_x/manifest.json>`" in last



def test_missing_benchmark_json_reads_as_none(tmp_path):
    tool = load_tool()
    assert tool.read_json(tmp_path / "paper_scale.json") is None and tool.read_json(None) is None
    (tmp_path / "paper_scale.json").write_text('{"01_x": {"gpu_gb": 1.0}}')
    assert tool.read_json(tmp_path / "paper_scale.json") == {"01_x": {"gpu_gb": 1.0}}
