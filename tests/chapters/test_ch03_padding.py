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


def fake_table(raw_spc, vgg_spc, corner_acc):
    rows = []
    for k, v in enumerate(raw_spc):
        rows += [dict(experiment="raw readout", setting=f"zero padding {k}", pattern=p,
                      metric="spc_paper", value=v) for p in ("H", "G")]
    for mode, v in zip(("zero", "none"), vgg_spc):
        rows += [dict(experiment="vgg16 padding", setting=mode, pattern=p, metric="spc_paper",
                      value=v) for p in ("H", "G")]
    for mode, acc in corner_acc.items():
        rows += [dict(experiment="corner task", setting=mode, pattern="", metric="test_accuracy",
                      value=acc, run=s) for s in range(2)]
    return pd.DataFrame(rows)


def test_claims_hold_and_fail(tmp_path):
    cfg = config(tmp_path)
    good = fake_table([0.0, 0.27, 0.39], [0.74, 0.38], {"zero": 1.0, "circular": 0.5})
    assert all(c.holds for c in padding.check_claims(good, cfg))
    bad = fake_table([0.0, 0.3, 0.2], [0.74, 0.60], {"zero": 0.8, "circular": 0.9})
    assert not any(c.holds for c in padding.check_claims(bad, cfg))
