import pytest

from posinfo.book import paper_tables as pt


def test_iclr2020_table1_transcription():
    t = pt.iclr2020_table1()
    assert len(t) == 5 * 3 * 4 * 2
    get = lambda p, e, s, m: t[(t.pattern == p) & (t.encoder == e) & (t.test_set == s) & (t.metric == m)].value.item()  # noqa: E731
    assert get("H", "vgg16", "natural", "spc") == 0.742
    assert get("G", "resnet", "noise", "mae") == 0.055
    assert get("V", "posenet", "natural", "spc") == 0.131


def test_iclr2020_table4_transcription():
    t = pt.iclr2020_table4()
    assert len(t) == 3 * 5
    assert set(t.setting) == {"zero padding 0", "zero padding 1", "zero padding 2", "zero", "none"}
    row = t[(t.pattern == "G") & (t.experiment == "raw readout") & (t.setting == "zero padding 2")]
    assert (row.spc.item(), row.mae.item()) == (0.380, 0.177)
    assert t[(t.pattern == "H") & (t.setting == "none")].spc.item() == 0.381


def test_iclr2020_tables_5_and_6():
    t5 = pt.iclr2020_table5()
    assert len(t5) == 2 * 3 * 2 + 2
    assert t5.query("padding == 'zero' and test_set == 'ecssd' and metric == 'f_measure'").value.item() == 0.78
    assert t5.query("padding == 'none' and metric == 'miou_%'").value.item() == 12.3
    t6 = pt.iclr2020_table6()
    assert len(t6) == 3 * 3 * 4 * 2 and set(t6.trained_for) == {"classification", "saliency", "segmentation"}
    assert t6.query("pattern == 'HS' and trained_for == 'segmentation' and test_set == 'noise' "
                    "and metric == 'spc'").value.item() == 0.789


def test_iccv2021_table1_transcription():
    t = pt.iccv2021_table1()
    assert len(t) == 3 * 2 * 2 * 3
    row = t[(t.padding == "replicate") & (t.network == "permutenet") & (t.task == "location") & (t.grid == 5)]
    assert row.value.item() == pytest.approx(0.401)
    assert (t[(t.network == "gapnet") & (t.task == "location")].value == 1.0).all()
    assert t.iloc[3].to_dict() == dict(padding="zero", network="gapnet", task="image", grid=3, value=0.826)


def test_iccv2021_table2_and_region_attacks():
    t = pt.iccv2021_table2()
    assert list(t.index) == ["baseline", "augshift", "blurpool"]
    assert t.loc["augshift", "cifar100_cons8"] == 85.6 and t.loc["blurpool", "imagenet_cons16"] == 88.8
    assert pt.ICCV2021_FIG4["baseline"] == 74.0 and pt.ICCV2021_CHANNELS == 2048
