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
