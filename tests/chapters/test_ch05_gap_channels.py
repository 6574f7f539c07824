import numpy as np
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


def test_validation_between_epochs_does_not_replay_the_training_permutations(tmp_path, monkeypatch):
    """Each epoch is validated, and PermuteNet's training permutations still differ from epoch
    to epoch (reseeding the training stream for validation used to replay them)."""
    cfg, data = _tiny(tmp_path)
    drawn = []
    original = gc.PermuteNet.draw_permutation

    def record(net, batch=None):
        out = original(net, batch)
        if net.training:
            drawn.append(out.clone())
        return out

    monkeypatch.setattr(gc.PermuteNet, "draw_permutation", record)
    _, record = gc.trained(gc.Setting("image", "permutenet", "zero", 3, 0.0625, 3, 1e-3, 8, 0), data, cfg)
    assert len(record["val_accuracy"]) == 3 and len(drawn) == 6  # 16 objects in batches of 8
    assert not any(torch.equal(a, b) for i, a in enumerate(drawn) for b in drawn[i + 1:])


def test_selectivity_is_the_share_of_variance_the_cell_explains(tmp_path):
    cfg, data = _tiny(tmp_path)
    net = gc.build_network("gapnet", 9, width=0.0625)
    stats = gc.cell_statistics(net, data, 3, cfg.device)
    s = stats.selectivity
    assert s.shape == (32,) and bool(((s >= 0) & (s <= 1 + 1e-5)).all())
    # against the definition, from every (cell, object) pair held at once
    z = torch.stack([gc.pooled_in_cell(net.eval(), data, k, 3, cfg.device) for k in range(9)])
    assert torch.allclose(stats.means, z.mean(1).T, atol=1e-6)
    total = z.reshape(-1, 32).var(0, unbiased=False).clamp_min(1e-12)
    direct = z.mean(1).var(0, unbiased=False) / total
    assert torch.allclose(s, direct, rtol=1e-4, atol=1e-6)


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


def test_late_gain_compares_the_last_third_with_the_third_before():
    assert gc.late_gain([0.5] * 9) == 0.0
    assert gc.late_gain([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]) == pytest.approx(0.2)
    assert gc.late_gain([0.1, 0.2, 0.9, 0.3, 0.2]) == pytest.approx(-0.1)  # a third is 1 epoch
    assert np.isnan(gc.late_gain([0.3, 0.4]))


def _curves(rising: float, epochs: int = 9, replicates: int = 3, noise: float = 0.004) -> pd.DataFrame:
    """Validation curves of both networks on both tasks: GAPNet flat at 0.9, PermuteNet rising by
    ``rising`` per epoch from 0.2; replicate r is moved by ``noise`` * (r - 1) from epoch 7 on."""
    rows = []
    for r in range(replicates):
        for task in ("location", "image"):
            for net, (start, step) in (("gapnet", (0.9, 0.0)), ("permutenet", (0.2, rising))):
                base = dict(task=task, padding="zero", grid=3, network=net, replicate=r)
                rows += [base | dict(metric="val_curve", epoch=e,
                                     value=start + step * e + noise * (r - 1) * (e > 6))
                         for e in range(1, epochs + 1)]
    return pd.DataFrame(rows)


def test_curve_state_is_decided_from_an_interval():
    assert gc.curve_state([0.001, 0.002, 0.0])[3] == "flat"
    assert gc.curve_state([0.05, 0.06, 0.04])[3] == "rising"
    assert gc.curve_state([-0.05, -0.06, -0.04])[3] == "falling"
    assert gc.curve_state([0.05, -0.04, 0.01])[3] == "unclear"
    assert gc.curve_state([0.0])[3] == "unclear"  # one replicate decides nothing
    assert gc.curve_state([float("nan"), 0.0])[3] == "unclear"


def test_convergence_table_and_note_tell_a_rising_curve_from_a_flat_one(tmp_path):
    rising = gc.convergence_table(_curves(0.01))
    assert rising.loc[("image", "gapnet", "zero", 3), "state"] == "flat"
    assert rising.loc[("image", "permutenet", "zero", 3), "state"] == "rising"
    assert rising.loc[("image", "permutenet", "zero", 3), "late_gain"] == pytest.approx(3.0)
    words = gc._convergence_words(gc._late_gains(_curves(0.01).query("task == 'image'")), 9, 64)
    assert "PermuteNet was still learning when training stopped" in words and "64 pooled channels" in words
    assert "PermuteNet's validation accuracy changed by +3.0 points" in words
    assert "interval over 3 replicates" in words
    flat = gc._convergence_words(gc._late_gains(_curves(0.001).query("task == 'image'")), 9, 64)
    assert "still learning" not in flat and "Both networks had levelled off" in flat
    noisy = gc._convergence_words(gc._late_gains(_curves(0.001, noise=0.1).query("task == 'image'")), 9, 64)
    assert "is not clear" in noisy
    short = gc._convergence_words(gc._late_gains(_curves(0.01, epochs=2).query("task == 'image'")), 2, 64)
    assert "too short" in short and "nan" not in short


def test_note_says_when_both_networks_were_still_learning():
    both = _curves(0.01)
    both.loc[both.network == "gapnet", "value"] += 0.01 * both.epoch
    words = gc._convergence_words(gc._late_gains(both.query("task == 'image'")), 9, 64)
    assert "Both networks were still learning" in words


def test_accuracy_plot_draws_one_point_per_grid_size():
    import matplotlib.pyplot as plt
    fig = gc.plot_accuracy(_table([1, 1, 1], [.8, .4, .2], [.83, .82, .82], [.73, .72, .70]))
    ours = [line for line in fig.axes[0].lines if line.get_linestyle() != "None"]
    assert ours and all(list(line.get_xdata()) == [3, 5, 7] for line in ours)
    plt.close(fig)


def test_curve_rows_hold_every_epoch():
    rows = gc.curve_rows(dict(task="image"), {"val_accuracy": [0.1, 0.2], "loss": [2.0, 1.5]})
    assert [(r["metric"], r["epoch"], r["value"]) for r in rows] == [
        ("val_curve", 1, 0.1), ("val_curve", 2, 0.2), ("loss_curve", 1, 2.0), ("loss_curve", 2, 1.5)]


def test_learning_curves_plot_a_panel_per_task_and_grid_with_a_line_per_network():
    import matplotlib.pyplot as plt
    fig = gc.plot_curves(_curves(0.01))
    assert len(fig.axes) == 2 and all(len(ax.lines) == 2 for ax in fig.axes)
    assert [line.get_label() for line in fig.axes[0].lines] == ["GAPNet", "PermuteNet"]
    plt.close(fig)


def test_image_task_spread_matches_the_papers_table():
    paper = gc._image_task(iccv2021_table1().query("task == 'image'"))
    assert (round(paper.gap.min(), 1), round(paper.gap.max(), 1)) == (9.0, 17.2)
    assert (paper.permutenet.min(), paper.permutenet.max()) == (65.7, 73.6)


def test_the_look_inside_batches_the_test_objects_without_changing_them(tmp_path):
    cfg, data = _tiny(tmp_path)
    net = gc.build_network("gapnet", 9, width=0.0625).eval()
    with torch.no_grad():
        whole = gc.pooled_in_cell(net, data, 4, 3, cfg.device, batch_size=10_000)
        parts = gc.pooled_in_cell(net, data, 4, 3, cfg.device, batch_size=5)
    assert whole.shape == (len(data.test), 32) and torch.allclose(whole, parts, atol=1e-6)
