import pickle

import numpy as np
import pytest
import torch
from posinfo.data import grid_inputs as grid
from posinfo.data.datasets import DatasetNotFoundError


def test_label_is_the_cell_and_the_canvas_is_empty_elsewhere():
    pool = grid.scene_objects(20, 8, seed=0)
    n = 3
    cells = grid.random_cells(20, n, torch.Generator().manual_seed(0))
    x = grid.place(pool, cells, n)
    assert x.shape == (20, 3, 24, 24)
    assert torch.equal(grid.targets(pool, cells, "location"), cells)
    for i, k in enumerate(cells.tolist()):
        r, c = divmod(k, n)
        inside = x[i, :, 8 * r: 8 * r + 8, 8 * c: 8 * c + 8]
        assert inside.abs().sum() > 0
        rest = x[i].clone()
        rest[:, 8 * r: 8 * r + 8, 8 * c: 8 * c + 8] = 0
        assert rest.abs().sum() == 0
        assert torch.equal(inside, pool.images[i] * pool.masks[i])


def test_image_labels_and_row_major_order():
    pool = grid.scene_objects(5, 8, seed=1)
    cells = torch.tensor([0, 2, 3, 5, 8])
    x = grid.place(pool, cells, 3)
    assert torch.equal(grid.targets(pool, cells, "image"), pool.labels)
    assert x[1, :, :8, 16:].abs().sum() > 0  # cell 2: first row, last column
    assert x[2, :, 8:16, :8].abs().sum() > 0  # cell 3: second row, first column
    assert grid.num_classes("location", 5) == 25 and grid.num_classes("image", 5) == 10


def test_pools_are_reproducible_and_seeds_differ():
    a, b, c = grid.scene_objects(4, 8, 0), grid.scene_objects(4, 8, 0), grid.scene_objects(4, 8, 1)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert a.take(torch.tensor([2, 0])).labels.tolist() == [a.labels[2], a.labels[0]]


def test_bad_cells_and_task_are_errors():
    pool = grid.scene_objects(2, 8, 0)
    with pytest.raises(ValueError, match="one cell"):
        grid.place(pool, torch.tensor([0, 9]), 3)
    with pytest.raises(ValueError, match="one cell"):
        grid.place(pool, torch.tensor([0]), 3)
    with pytest.raises(ValueError, match="unknown task"):
        grid.targets(pool, torch.tensor([0, 1]), "colour")


def _write_cifar(root, per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": list(rng.integers(0, 10, per_batch))}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)


def test_cifar_objects_on_a_fixture_in_the_official_layout(tmp_path, monkeypatch):
    import torchvision
    _write_cifar(tmp_path)
    # the fixture cannot match the official md5 sums; everything else is the real reader
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    pool = grid.cifar_objects(tmp_path, "train", 6, seed=0)
    assert pool.images.shape == (6, 3, 32, 32) and torch.equal(pool.masks, torch.ones(6, 32, 32))
    x = grid.place(pool, torch.zeros(6, dtype=torch.int64), 3)
    # normalised first, then placed: the empty canvas is zero, i.e. the dataset mean colour
    assert x[:, :, 32:, :].abs().sum() == 0
    assert len(grid.cifar_objects(tmp_path, "test", None, seed=0)) == 4


def test_missing_cifar_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar-10"):
        grid.cifar_objects(tmp_path, "train", 4, seed=0)
