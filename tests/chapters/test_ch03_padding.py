import pandas as pd
import pytest
from posinfo.book.params import resolve
from posinfo.chapters import ch03_padding as padding


def config(tmp_path, **knobs):
    return resolve(padding.SPEC, dict(profile="smoke", seed=0, device="cpu", data_root=str(tmp_path),
                                      out_dir=str(tmp_path / "out")) | knobs)


def test_distance_to_border():
    d = padding.distance_to_border(5)
    assert d.tolist() == [[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 2, 1, 0], [0, 1, 1, 1, 0],
                          [0, 0, 0, 0, 0]]


def test_error_by_distance_bands():
    err = padding.distance_to_border(8).float()[None].expand(3, -1, -1)  # error = distance
    table = padding.error_by_distance({"zero": err}, bins=4)
    assert table.value.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert table.metric.tolist() == ["error_d0", "error_d1", "error_d2", "error_d3"]


def test_validation_before_work(tmp_path):
    with pytest.raises(ValueError, match="at least 196 px"):
        padding.validate(config(tmp_path, nopad_image_size=192))
    with pytest.raises(ValueError, match="one VGG16"):
        padding.validate(config(tmp_path, encoders=["resnet18"]))
    with pytest.raises(ValueError, match=r"parameter 'borders' got \['mirror'\]"):
        config(tmp_path, borders=["mirror"])
    padding.validate(config(tmp_path))


def fake_table(raw_spc, vgg_spc, corner_acc, replicates=3, jitter=0.01):
    """Readout SPCs in each replicate (moved by ``jitter`` times replicate - 1) and corner-task
    accuracies per seed (the same jitter per seed)."""
    rows = []
    for r in range(replicates):
        shift = jitter * (r - 1)
        for k, v in enumerate(raw_spc):
            rows += [dict(experiment="raw readout", setting=f"zero padding {k}", pattern=p,
                          metric="spc_paper", value=v + shift, replicate=r) for p in ("H", "G")]
        for mode, v in zip(("zero", "none"), vgg_spc):
            rows += [dict(experiment="vgg16 padding", setting=mode, pattern=p, metric="spc_paper",
                          value=v + shift, replicate=r) for p in ("H", "G")]
    for mode, acc in corner_acc.items():
        rows += [dict(experiment="corner task", setting=mode, pattern="", metric="test_accuracy",
                      value=min(1.0, acc + jitter * (s - 1)), run=s) for s in range(3)]
    return pd.DataFrame(rows)


def test_claims_hold_and_fail(tmp_path):
    cfg = config(tmp_path)
    good = fake_table([0.0, 0.27, 0.39], [0.74, 0.38], {"zero": 0.99, "circular": 0.5})
    claims = padding.check_claims(good, cfg)
    assert all(c.holds for c in claims) and all(c.control != "holds" for c in claims)
    assert [c.n for c in claims] == [3, 3, 3, 3]
    bad = fake_table([0.0, 0.3, 0.2], [0.74, 0.60], {"zero": 0.8, "circular": 0.9})
    assert not any(c.holds for c in padding.check_claims(bad, cfg))


def test_no_claim_holds_on_null_inputs(tmp_path):
    """Padding that changes nothing and a corner network at chance with either padding: only
    P4's absence holds; a circular network that tells the corners apart fails it."""
    cfg = config(tmp_path)
    flat = fake_table([0.05, 0.05, 0.05], [0.5, 0.5], {"zero": 0.5, "circular": 0.5})
    assert {c.id for c in padding.check_claims(flat, cfg) if c.holds} == {"P4"}
    seeing = fake_table([0.05, 0.05, 0.05], [0.5, 0.5], {"zero": 0.99, "circular": 0.99})
    assert "P4" not in {c.id for c in padding.check_claims(seeing, cfg) if c.holds}


def test_padding_table_beside_table4():
    """Ours (mean over replicates) beside the paper's Table 4; the paper's cells are blank where
    it has no such row (borders other than zero)."""
    table = fake_table([0.0, 0.27, 0.39], [0.74, 0.38], {"zero": 0.99, "circular": 0.5})
    extra = table[table.setting == "zero padding 1"].assign(setting="circular padding 1")
    table = pd.concat([table, extra, table.assign(metric="mae", value=0.2)], ignore_index=True)
    wide = padding.padding_table(table)
    assert wide.loc[("raw readout", "zero padding 2"), ("G", "spc", "paper")] == 0.380
    assert wide.loc[("raw readout", "zero padding 2"), ("G", "spc", "ours")] == 0.39
    assert wide.loc[("vgg16 padding", "none"), ("H", "mae", "paper")] == 0.223
    assert pd.isna(wide.loc[("raw readout", "circular padding 1"), ("H", "spc", "paper")])
    assert list(wide.index)[0] == ("raw readout", "zero padding 0")


def test_paper_profile_checks_its_images_against_both_grids(tmp_path):
    from pathlib import Path
    fixtures = Path(__file__).resolve().parents[2] / "data" / "fixtures"  # 20 x 16 px images
    cfg = config(tmp_path, profile="paper", data_root=str(fixtures), feature_size=8,
                 nopad_feature_size=8, weights="random")
    padding.validate(cfg)
    with pytest.raises(ValueError, match=r"20 x 16 px; the book needs at least 20 px"):
        padding.validate(config(tmp_path, profile="paper", data_root=str(fixtures), feature_size=8,
                                nopad_feature_size=20, weights="random"))
