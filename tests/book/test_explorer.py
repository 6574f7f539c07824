import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from posinfo.book import explorer
from posinfo.data import targets


@pytest.fixture
def gallery() -> dict:
    maps = {}
    for source in ("raw", "vgg"):
        for pattern in ("H", "G"):
            for test_set in ("natural", "black"):
                maps[(source, "sgd", pattern, test_set)] = targets.position_map(pattern, 16)
    maps[("vgg", "least_squares", "G", "natural")] = torch.zeros(16, 16)
    return maps


@pytest.fixture
def inputs() -> dict:
    return {"natural": torch.rand(2, 3, 16, 16), "black": torch.zeros(2, 3, 16, 16)}


def test_prediction_figure_titles_report_scores(gallery: dict, inputs: dict) -> None:
    fig = explorer.prediction_figure(gallery, inputs, "vgg", "sgd", "G", "black")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[2] == "prediction (SPC 1.00)" and titles[3] == "|error| (MAE 0.00)"
    plt.close(fig)


def test_error_gallery_has_a_row_per_test_input_run(gallery: dict, inputs: dict) -> None:
    fig = explorer.error_gallery(gallery, inputs, "vgg", "least_squares", "G")
    assert len(fig.axes) == 4  # only the natural input was run for this readout
    fig = explorer.error_gallery(gallery, inputs, "vgg", "sgd", "G")
    assert len(fig.axes) == 8 and [fig.axes[i].get_ylabel() for i in (0, 4)] == ["natural", "black"]
    plt.close("all")


def test_explorer_offers_every_choice_and_reports_missing_ones(gallery: dict, inputs: dict) -> None:
    box = explorer.explorer(gallery, inputs)
    dropdowns = [w for row in box.children[:2] for w in row.children]
    assert [list(d.options) for d in dropdowns] == [["raw", "vgg"], ["sgd", "least_squares"],
                                                   ["H", "G"], ["natural", "black"]]
    dropdowns[1].value = "least_squares"  # raw has no least-squares readout: no error, a message
    assert dropdowns[1].value == "least_squares"


def test_own_images_reach_the_explorer(tmp_path) -> None:
    """With ``test_images``, the explorer's natural input is the reader's first image, read out
    by the run's own readouts."""
    from PIL import Image
    from posinfo.book.params import resolve
    from posinfo.chapters import ch01_existence
    from posinfo.probe import probing

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "a.png")
    cfg = resolve(ch01_existence.SPEC, dict(
        profile="smoke", seed=0, device="cpu", data_root=str(tmp_path), out_dir=str(tmp_path / "o"),
        test_images=str(folder), encoders=["vgg16_bn"], weights="random", patterns=["H"],
        n_train=4, readout_epochs=1, compare_random=False, least_squares=False,
        cache_dir=str(tmp_path / "cache")))
    data = probing.load_data(cfg, progress=False)
    run = probing.run_readouts(cfg, data, probing.load_sources(cfg, progress=False), progress=False)
    fig = explorer.prediction_figure(run.gallery, data.tests, "vgg16_bn (random)", "sgd", "H", "natural")
    shown = fig.axes[0].get_images()[0].get_array()  # the input panel, [S, S, 3] in [0, 1]
    assert shown[..., 0].mean() == pytest.approx(200 / 255, abs=0.01)
    assert shown[..., 2].mean() == pytest.approx(10 / 255, abs=0.01)
    plt.close(fig)
