import itertools

import pandas as pd
import pytest
from posinfo.book.params import resolve
from posinfo.chapters import ch01_existence as existence
from posinfo.data.datasets import DatasetNotFoundError
from posinfo.probe.probing import RAW, TEST_SETS


def config(tmp_path, **knobs):
    return resolve(existence.SPEC, dict(profile="smoke", seed=0, device="cpu", data_root=str(tmp_path),
                                        out_dir=str(tmp_path / "out")) | knobs)


def fake_table(spc: dict, mae: dict, replicates: int = 3, jitter: float = 0.01) -> pd.DataFrame:
    """A results table where encoder e has SPC spc[e][pattern] and MAE mae[e] on every input, in
    each replicate, moved by ``jitter`` times (replicate - 1)."""
    rows = []
    for r, enc, pattern, test_set in itertools.product(range(replicates), spc,
                                                       ("H", "V", "G", "HS", "VS"), TEST_SETS):
        weights = "none" if enc == RAW else "synthetic"
        for metric, value in (("spc_paper", spc[enc][pattern]), ("mae", mae[enc])):
            rows.append(dict(source=enc, encoder=enc, weights=weights, readout="sgd",
                             pattern=pattern, test_set=test_set, metric=metric,
                             value=value + jitter * (r - 1), replicate=r))
    return pd.DataFrame(rows)


PAPER_LIKE = {
    RAW: dict(H=0.01, V=0.13, G=0.0, HS=0.0, VS=0.0),
    "vgg16_bn": dict(H=0.74, V=0.82, G=0.81, HS=0.40, VS=0.37),
    "resnet18": dict(H=0.93, V=0.95, G=0.94, HS=0.53, VS=0.52),
}


def test_claims_hold_on_paper_like_numbers(tmp_path):
    table = fake_table(PAPER_LIKE, {RAW: 0.25, "vgg16_bn": 0.15, "resnet18": 0.08})
    claims = existence.check_claims(table, config(tmp_path))
    assert [c.id for c in claims] == ["E1", "E2", "E3", "E4", "E5", "E6"]
    assert all(c.holds for c in claims) and all(c.n == 3 for c in claims)
    assert all(c.control != "holds" for c in claims)  # every control fails on the same numbers


def test_no_claim_holds_on_null_inputs(tmp_path):
    """Position-blind readouts everywhere (constant maps: SPC 0, the constant map's MAE): no
    finding of position holds; and a raw-image readout that reads the target fails E1."""
    cfg = config(tmp_path)
    blind = {e: dict.fromkeys(PAPER_LIKE[RAW], 0.0) for e in PAPER_LIKE}
    claims = existence.check_claims(fake_table(blind, dict.fromkeys(PAPER_LIKE, 0.25)), cfg)
    assert {c.id for c in claims if c.holds} == {"E1"}  # E1 is a finding of absence
    perfect = {e: dict.fromkeys(PAPER_LIKE[RAW], 1.0) for e in PAPER_LIKE}
    claims = existence.check_claims(fake_table(perfect, dict.fromkeys(PAPER_LIKE, 0.0)), cfg)
    assert not any(c.holds for c in claims)


def test_a_close_call_is_inconclusive_not_a_pass(tmp_path):
    """E4 with ResNet's lead at the margin and a spread between replicates: inconclusive."""
    close = {k: dict(v) for k, v in PAPER_LIKE.items()}
    close["resnet18"] |= {p: close["vgg16_bn"][p] + 0.05 for p in ("H", "V", "G")}
    table = fake_table(close, {RAW: 0.25, "vgg16_bn": 0.15, "resnet18": 0.08})
    resnet = (table.encoder == "resnet18") & (table.metric == "spc_paper")
    table.loc[resnet, "value"] += 0.04 * (table.loc[resnet, "replicate"] - 1)
    e4 = {c.id: c for c in existence.check_claims(table, config(tmp_path))}["E4"]
    assert e4.verdict == "inconclusive" and e4.replicates_needed is None  # mean on the margin


def test_each_claim_can_fail(tmp_path):
    cfg = config(tmp_path)
    bad = {k: dict(v) for k, v in PAPER_LIKE.items()}
    bad[RAW]["V"] = 0.6        # E1: the raw readout finds position; E2 gain shrinks
    bad["resnet18"]["H"] = 0.70          # E4: ResNet below VGG on H
    bad["vgg16_bn"]["HS"] = 0.9             # E5: a stripe pattern easier than H
    table = fake_table(bad, {RAW: 0.25, "vgg16_bn": 0.30, "resnet18": 0.08})  # E6 fails
    verdicts = {c.id: c.verdict for c in existence.check_claims(table, cfg)}
    assert verdicts == {"E1": "fails", "E2": "fails", "E3": "holds", "E4": "fails", "E5": "fails",
                        "E6": "fails"}


def test_spec_rejects_bad_parameters_before_work(tmp_path):
    with pytest.raises(ValueError, match="encoders"):
        config(tmp_path, encoders=["vgg19"])
    with pytest.raises(ValueError, match="patterns"):
        config(tmp_path, patterns=["H", "D"])
    with pytest.raises(ValueError, match="does not declare"):
        config(tmp_path, epochs=3)


def test_imagenet_weights_missing_fail_before_work(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ImageNet weights for vgg16"):
        existence.validate(config(tmp_path, weights="imagenet", encoders=["vgg16", "resnet18"],
                                  vgg_width=1.0))


def test_paper_profile_without_data_fails_naming_the_dataset(tmp_path):
    cfg = config(tmp_path, profile="paper", device="cpu")
    with pytest.raises(DatasetNotFoundError, match="duts-train|DUT"):
        existence.validate(cfg)


def test_validate_catches_inconsistent_knobs(tmp_path):
    with pytest.raises(ValueError, match="no image size for resnet18"):
        existence.validate(config(tmp_path, pretrain_size={"vgg16_bn": 32}))
    with pytest.raises(ValueError, match="vgg_width=1.0"):
        existence.validate(config(tmp_path, weights="imagenet", vgg_width=0.5))
    with pytest.raises(ValueError, match="one VGG with one ResNet"):
        existence.validate(config(tmp_path, encoders=["resnet18", "resnet34"]))
    with pytest.raises(ValueError, match="need all of"):
        existence.validate(config(tmp_path, patterns=["H"]))
    existence.validate(config(tmp_path))  # the smoke profile itself is fine


def test_test_set_note_says_what_the_natural_test_set_held():
    import torch

    from posinfo.probe.probing import ProbeData
    scenes = ProbeData(torch.zeros(2, 3, 32, 32), {"natural": torch.zeros(3, 3, 32, 32)},
                       torch.zeros(3, 32, 32), "generated scenes")
    assert existence.test_set_note(scenes).data == "**Natural test images:** 3 from generated scenes."
    own = ProbeData(scenes.train, scenes.tests, torch.zeros(0, 32, 32), "/photos",
                    [(640, 480), (100, 200), (300, 300)])
    assert existence.test_set_note(own).data.startswith(
        "**Natural test images:** 3 from /photos, 100-640 px wide and 200-480 px high on disk "
        "(median 300 x 300), each resized to 32 px square")


def test_e6_measures_the_lead_over_a_constant_map_too(tmp_path):
    """A raw-image readout worse than a constant map must not make the encoders look good: the
    lead is taken over the better of the two (a constant H map has MAE .25 at any size)."""
    cfg = config(tmp_path)
    size = cfg.image_size
    assert existence.blind_mae("H", size) == pytest.approx(0.25, abs=0.01)
    table = fake_table(PAPER_LIKE, {RAW: 0.60, "vgg16_bn": 0.24, "resnet18": 0.24})
    e6 = {c.id: c for c in existence.check_claims(table, cfg)}["E6"]
    assert e6.verdict == "fails"  # .36 below the raw readout, but not .02 below a constant map
    assert e6.effect < 0.02 and e6.control != "holds"


def test_least_squares_fits_show_each_ridge_and_condition_number():
    rows = [dict(source=src, readout="least_squares", pattern=p, test_set="training", metric=m,
                 value=v) for src in ("posenet", "vgg16_bn") for p in ("H", "G")
            for m, v in (("ridge", 1e-4 if p == "H" else 1.0), ("condition", 31623.0))]
    rows.append(dict(source="posenet", readout="least_squares", pattern="H", test_set="natural",
                     metric="spc_paper", value=0.5))
    fits = existence.least_squares_fits(pd.DataFrame(rows))
    assert list(fits.index) == ["posenet", "vgg16_bn"]
    assert list(fits.columns) == [("ridge", "H"), ("ridge", "G"), ("condition", "H"), ("condition", "G")]
    assert fits.loc["vgg16_bn", ("ridge", "H")] == "1e-04" and fits.loc["posenet", ("ridge", "G")] == "1e+00"
    assert fits.loc["posenet", ("condition", "G")] == "3.2e+04"
