import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from posinfo.book.plots import image_panels as plots_image_panels  # noqa: E402
from posinfo.book.plots import map_grid  # noqa: E402


def test_map_grid_has_a_panel_per_map_and_the_input_first():
    maps = {"target": [torch.zeros(4, 4), torch.ones(4, 4)], "vgg": [torch.rand(4, 4)] * 2}
    fig = map_grid(maps, ["H", "G"], image=torch.rand(3, 4, 4))
    axes = fig.axes
    assert len(axes) == 2 * 3
    assert [a.get_title() for a in axes[:3]] == ["input", "H", "G"]
    assert axes[3].get_ylabel() == "vgg"
    plt.close(fig)
    assert len(map_grid(maps, ["H", "G"]).axes) == 2 * 2


def test_image_panels_clears_ticks():
    fig, axes = plt.subplots(1, 2)
    axes[0].plot([0, 1], [0, 1])
    assert plots_image_panels(fig) is fig
    assert all(len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0 for ax in fig.axes)
    plt.close(fig)
