"""The probing machinery of chapters 1-4, with chapter 1's knobs (its parameters are the probe's)."""

from pathlib import Path

import pandas as pd
import pytest

from posinfo.book.params import resolve
from posinfo.chapters import ch01_existence
from posinfo.probe import probing


def config(tmp_path, **knobs):
    return resolve(ch01_existence.SPEC, dict(profile="smoke", seed=0, device="cpu",
                                             data_root=str(tmp_path), out_dir=str(tmp_path / "out"))
                   | knobs)


def test_paper_profile_reads_duts_and_pascal_s_from_data_root(tmp_path):
    fixtures = Path(__file__).resolve().parents[2] / "data" / "fixtures"
    cfg = config(tmp_path, profile="paper", data_root=str(fixtures), image_size=32, n_synthetic=2,
                 weights="random", feature_size=8)  # the fixtures are 20 x 16 px
    probing.check_inputs_exist(cfg)
    data = probing.load_data(cfg, progress=False)
    assert data.train.shape == (3, 3, 32, 32) and data.tests["natural"].shape == (3, 3, 32, 32)
    assert set(data.tests) == set(probing.TEST_SETS)
    assert 0 <= data.train.min() and data.train.max() <= 1


def test_smoke_scenes_are_deterministic_per_seed(tmp_path):
    a = probing.load_data(config(tmp_path), progress=False)
    b = probing.load_data(config(tmp_path), progress=False)
    c = probing.load_data(config(tmp_path, seed=1), progress=False)
    assert a.train.equal(b.train) and not a.train.equal(c.train)
    natural = a.tests["natural"]
    assert not a.train[: len(natural)].equal(natural)  # training and test scenes differ


def test_own_images_replace_the_natural_test_set(tmp_path):
    from PIL import Image
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "a.jpg")
    Image.new("L", (25, 50), 90).save(folder / "b.png")
    cfg = config(tmp_path, test_images=str(folder))
    probing.check_inputs_exist(cfg)
    data = probing.load_data(cfg, progress=False)
    assert data.tests["natural"].shape == (2, 3, 32, 32) and data.natural_sizes == [(40, 30), (25, 50)]
    assert data.natural_source == str(folder) and data.natural_masks.shape == (0, 32, 32)
    assert set(data.tests) == set(probing.TEST_SETS)
    (folder / "c.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"c\.png"):
        probing.check_inputs_exist(cfg)
    with pytest.raises(Exception, match="does not exist"):
        probing.check_inputs_exist(config(tmp_path, test_images=str(tmp_path / "none")))


def test_own_images_in_the_paper_profile_need_no_pascal_s(tmp_path):
    import shutil

    from PIL import Image
    fixtures = Path(__file__).resolve().parents[2] / "data" / "fixtures"
    shutil.copytree(fixtures / "DUTS-TR", tmp_path / "root" / "DUTS-TR")  # no PASCAL-S
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (40, 30), (9, 9, 9)).save(tmp_path / "photos" / "a.png")
    cfg = config(tmp_path, profile="paper", data_root=str(tmp_path / "root"), image_size=32,
                 n_synthetic=2, weights="random", test_images=str(tmp_path / "photos"),
                 feature_size=8)  # the fixtures are 20 x 16 px
    probing.check_inputs_exist(cfg)
    data = probing.load_data(cfg, progress=False)
    assert data.tests["natural"].shape == (1, 3, 32, 32) and data.train.shape[0] == 3


def test_replicates_draw_their_own_data_and_readouts(tmp_path):
    """Each replicate has its own seed (scenes, weights, readout initialisation); the
    comparisons no claim rests on (random weights, least squares) run in the first only."""
    cfg = config(tmp_path, weights="synthetic", encoders=["vgg16_bn"], n_train=4, n_test=2,
                 n_synthetic=1, patterns=["H"], image_size=32, readout_epochs=1, replicates=3,
                 pretrain_images=8, pretrain_size=32, cache_dir=str(tmp_path / "cache"))
    assert [cfg.replicate(k).seed for k in range(3)] == [0, 100_003, 200_006]
    data, sources = probing.load_data(cfg, progress=False), probing.load_sources(cfg, progress=False)
    run = probing.run_replicates(cfg, data, sources, progress=False)
    assert sorted(run.table.replicate.unique()) == [0, 1, 2]
    first = run.table[run.table.replicate == 0]
    later = run.table[run.table.replicate == 1]
    assert {"random", "synthetic", "none"} == set(first.weights) and set(later.weights) == {"synthetic", "none"}
    assert set(first.readout) == {"sgd", "least_squares"} and set(later.readout) == {"sgd"}
    fits = first[first.test_set == "training"]  # each least-squares fit: ridge and conditioning
    assert set(fits.readout) == {"least_squares"} and set(fits.metric) == {"ridge", "condition"}
    assert len(fits) == 2 * 3 and (fits[fits.metric == "condition"].value >= 1).all()
    nat = run.table[(run.table.metric == "mae") & (run.table.test_set == "natural")
                    & (run.table.readout == "sgd") & (run.table.weights == "synthetic")]
    assert nat.value.nunique() == 3  # three encoders and readouts, three different scores
    pretrained = sorted(p.name for p in (tmp_path / "cache").glob("encoder-vgg16_bn-*.pt"))
    assert len(pretrained) == 3  # one synthetic encoder per replicate


def test_constant_maps_counts_every_input():
    """Counts summed over patterns and replicates, every input shown (zero counts too)."""
    rows = [dict(source=s, readout="sgd", pattern=p, test_set=t, metric=m, value=v, replicate=r)
            for s in ("posenet", "vgg16_bn") for p in ("H", "G") for t in ("natural", "black", "noise")
            for r in (0, 1) for m, v in (("n_constant", 2 if (s, t) == ("posenet", "black") else 0),
                                         ("n_images", 5), ("spc", 0.5))]
    counts = probing.constant_maps(pd.DataFrame(rows))
    assert list(counts.columns) == ["natural", "black", "noise"]
    assert counts.loc[("posenet", "sgd"), "black"] == "8 of 20"
    assert counts.loc[("vgg16_bn", "sgd"), "noise"] == "0 of 20"


FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures"


def test_paper_profile_decodes_its_files_before_any_work(tmp_path):
    import shutil
    root = tmp_path / "root"
    for name in ("DUTS-TR", "PASCAL-S"):
        shutil.copytree(FIXTURES / name, root / name)
    cfg = config(tmp_path, profile="paper", data_root=str(root), image_size=32, weights="random",
                 feature_size=8)
    probing.check_inputs_exist(cfg)
    bad = root / "DUTS-TR" / "DUTS-TR-Image" / "n01532829_13482.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # a truncated JPEG
    with pytest.raises(ValueError, match=f"dataset 'duts-train': malformed image file {bad}"):
        probing.check_inputs_exist(cfg)
    probing.check_inputs_exist(config(tmp_path, profile="paper", data_root=str(root), image_size=32,
                                      weights="random", feature_size=8, n_train=2))  # not read
    mask = root / "PASCAL-S" / "Masks" / "10.png"
    mask.write_bytes((root / "DUTS-TR" / "DUTS-TR-Mask" / "n01532829_13482.png").read_bytes()[:80])
    with pytest.raises(ValueError, match=r"dataset 'pascal-s': malformed image file .*10\.png"):
        probing.check_inputs_exist(config(tmp_path, profile="paper", data_root=str(root),
                                          image_size=32, weights="random", feature_size=8, n_train=2))


def test_paper_profile_refuses_images_below_its_feature_grid(tmp_path):
    cfg = config(tmp_path, profile="paper", data_root=str(FIXTURES), image_size=32, weights="random")
    assert cfg.feature_size == 28  # the paper's grid; the fixtures are 20 x 16 px
    with pytest.raises(ValueError, match=r"dataset 'duts-train': image file .*\.jpg is 20 x 16 px; "
                                         "the book needs at least 28 px on each side here"):
        probing.check_inputs_exist(cfg)
    with pytest.raises(ValueError, match="at least 20 px"):
        probing.check_inputs_exist(cfg, grid=20)  # a chapter with a finer grid elsewhere asks more
    probing.check_inputs_exist(cfg, grid=16)


def test_own_images_errors_name_the_knob_and_the_file(tmp_path):
    from PIL import Image
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 30)).save(folder / "a.jpg")
    with pytest.raises(ValueError, match=f"^test_images must be a folder of images; "
                                         f"{folder / 'a.jpg'} is a file$"):
        probing.check_inputs_exist(config(tmp_path, test_images=str(folder / "a.jpg")))
    with pytest.raises(FileNotFoundError, match=f"^test_images: the folder does not exist: "
                                                f"{tmp_path / 'none'}$"):
        probing.check_inputs_exist(config(tmp_path, test_images=str(tmp_path / "none")))
    (folder / "b.HEIC").write_bytes(b"a phone's photo")
    with pytest.raises(ValueError, match=r"^test_images: .*photos holds 1 image file\(s\) the book "
                                         r"does not read: b\.HEIC\. It reads \.jpg, \.jpeg, \.png, "
                                         r"\.bmp files only"):
        probing.check_inputs_exist(config(tmp_path, test_images=str(folder)))
    (folder / "b.HEIC").unlink()
    Image.new("RGB", (40, 6)).save(folder / "c.png")  # 6 px high: below the smoke grid of 8
    with pytest.raises(ValueError, match=r"^test_images: image file .*c\.png is 40 x 6 px; the book "
                                         "needs at least 8 px"):
        probing.check_inputs_exist(config(tmp_path, test_images=str(folder)))
    with pytest.raises(ValueError, match=r"c\.png is 40 x 6 px"):
        probing.load_data(config(tmp_path, test_images=str(folder)), progress=False)
