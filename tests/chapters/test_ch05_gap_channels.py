import pandas as pd
import pytest
import torch
from posinfo.book.paper_tables import iccv2021_table1
from posinfo.book.params import resolve
from posinfo.chapters import ch05_gap_channels as gc
from posinfo.data import grid_inputs as grid


def _cfg(tmp_path, **knobs):
    ns = dict(profile="smoke", seed=0, device="cpu", data_root="data", out_dir=str(tmp_path / "out"),
              cache_dir=str(tmp_path / "cache")) | knobs
    return resolve(gc.SPEC, ns)


def test_settings_cover_tasks_paddings_grids_and_networks(tmp_path):
    cfg = _cfg(tmp_path)
    s = gc.settings(cfg)
    assert len(s) == 3 * 3 * 2 + 1 * 3 * 2
    assert {x.padding for x in s if x.task == "image"} == {"zero"}


@pytest.mark.parametrize("knobs, message", [
    (dict(paddings=["zero", "reflect"]), "paddings must include"),
    (dict(image_paddings=["circular"]), "paddings must include"),
    (dict(grid_sizes=[5, 3]), "increasing"),
    (dict(networks=["gapnet"]), "both networks"),
    (dict(paddings=["zero", "reflect", "replicate", "none"]), "nothing for GAPNet"),
    (dict(source="cifar10", cell=16), "cell must be 32 with source='cifar10'"),
])
def test_bad_runs_fail_before_any_work(tmp_path, knobs, message):
    with pytest.raises(ValueError, match=message):
        gc.validate(_cfg(tmp_path, **knobs))


def test_unknown_choices_and_missing_cifar_are_errors(tmp_path):
    with pytest.raises(ValueError, match="'mirror' does not fit"):
        _cfg(tmp_path, paddings=["zero", "mirror"])
    from posinfo.data.datasets import DatasetNotFoundError
    with pytest.raises(DatasetNotFoundError):
        gc.validate(_cfg(tmp_path, source="cifar10", cell=32, data_root=str(tmp_path)))


def _tiny(tmp_path):
    cfg = _cfg(tmp_path, grid_sizes=[3, 5], n_train=16, n_val=8, n_test=8)
    data = gc.GridData(grid.scene_objects(16, 8, 0), grid.scene_objects(8, 8, 1),
                       grid.scene_objects(8, 8, 2))
    return cfg, data


def test_training_is_cached_deterministic_and_selects_on_validation(tmp_path):
    cfg, data = _tiny(tmp_path)
    setting = gc.Setting("location", "permutenet", "zero", 3, 0.0625, 2, 1e-3, 8, 0)
    net, record = gc.trained(setting, data, cfg)
    files = list((tmp_path / "cache" / "gap_channels").glob("*.pt"))
    assert len(files) == 1 and len(record["val_accuracy"]) == 2
    assert record["best_epoch"] == 1 + max(range(2), key=lambda e: (record["val_accuracy"][e], -e))
    for f in files:
        f.unlink()  # train again from scratch: the same weights
    _, again = gc.trained(setting, data, cfg)
    assert all(torch.equal(a, again["state"][k]) for k, a in record["state"].items())
    acc = gc.test_accuracy(net, setting, data, cfg)
    assert len(acc) == cfg.test_placements and acc == gc.test_accuracy(net, setting, data, cfg)


def test_selectivity_is_a_share_of_variance(tmp_path):
    cfg, data = _tiny(tmp_path)
    net = gc.build_network("gapnet", 9, width=0.0625)
    s = gc.selectivity(net, data, 3, cfg.device)
    assert s.shape == (32,) and bool(((s >= 0) & (s <= 1 + 1e-5)).all())
    assert gc.cell_responses(net, data, 3, cfg.device).shape == (32, 9)


def _table(loc_gap, loc_perm, img_gap, img_perm, replicates=3, jitter=0.002):
    """Test accuracies per grid size (3, 5, 7) for each network and task, alike for the paper's
    paddings, in each replicate moved by ``jitter`` times (replicate - 1)."""
    rows = []
    for r in range(replicates):
        for task, accs in (("location", (loc_gap, loc_perm)), ("image", (img_gap, img_perm))):
            for net, acc in zip(("gapnet", "permutenet"), accs):
                for pad in gc.PAPER_PADDINGS:
                    rows += [dict(task=task, padding=pad, grid=n, network=net, metric="test_accuracy",
                                  value=min(1.0, v + jitter * (r - 1)), replicate=r)
                             for n, v in zip((3, 5, 7), acc)]
    return pd.DataFrame(rows)


def test_claims_are_computed_from_the_numbers(tmp_path):
    cfg = _cfg(tmp_path)
    paper_like = _table([1, 1, 1], [.8, .4, .2], [.83, .82, .82], [.73, .72, .70], jitter=0.0)
    claims = gc.check_claims(paper_like, cfg)
    assert [c.holds for c in claims] == [True, True, True]
    assert all(c.control != "holds" and c.n == 3 for c in claims)
    worse = _table([1, .98, 1], [.8, .85, .6], [.9, .9, .9], [.1, .1, .1])
    assert [c.holds for c in gc.check_claims(worse, cfg)] == [False, False, False]
    wide = gc.accuracy_table(paper_like)
    assert ("location", 3, "paper") in wide.columns and wide.loc[("zero", "gapnet"), ("location", 7, "ours")] == 100


def test_g3_needs_a_small_image_gap_not_only_a_smaller_one(tmp_path):
    """The issue's case: image gaps of 55-64 points under location gaps of 80: not small."""
    table = _table([1, 1, 1], [.1, .05, .02], [.8, .8, .8], [.2, .2, .16])
    assert {c.id: c.verdict for c in gc.check_claims(table, _cfg(tmp_path))}["G3"] == "fails"


def test_no_claim_holds_on_null_inputs(tmp_path):
    """Networks at chance on both tasks (1/n^2 for location, 10% for the class): no finding
    holds."""
    chance = [1 / 9, 1 / 25, 1 / 49]
    table = _table(chance, chance, [.1, .1, .1], [.1, .1, .1])
    assert not any(c.holds for c in gc.check_claims(table, _cfg(tmp_path)))


def test_training_length_note_follows_the_best_epochs():
    levelled = gc._training_length_note([9, 9, 6], 10, 64)
    assert levelled.startswith("PermuteNet's best validation epochs were 9, 9, 6 of 10: these runs peaked")
    assert "still learning" not in levelled and "64 pooled channels" in levelled
    learning = gc._training_length_note([10, 7], 10, 64)
    assert learning.startswith("In 1 of 2 runs PermuteNet's best validation epoch was its last (10)")


def test_image_task_spread_matches_the_papers_table():
    paper = gc._image_task(iccv2021_table1().query("task == 'image'"))
    assert (round(paper.gap.min(), 1), round(paper.gap.max(), 1)) == (9.0, 17.2)
    assert (paper.permutenet.min(), paper.permutenet.max()) == (65.7, 73.6)
