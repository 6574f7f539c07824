import filecmp
import os
import runpy
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from posinfo.data.datasets import (
    DATASETS,
    SALIENCY,
    TORCHVISION,
    DatasetNotFoundError,
    ImageFolderDataset,
    IMAGE_EXTENSIONS,
    MIN_SIDE,
    dataset_root,
    grid_min_side,
    image_folder_tensors,
    saliency_dataset,
    torchvision_dataset,
    verify_dataset,
)

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures"
DUTS_NAMES = ["ILSVRC2012_test_00000004", "ILSVRC2012_test_00000018", "n01532829_13482"]


@pytest.fixture
def data_root(tmp_path):
    """A writable copy of the fixtures, for tests that damage them."""
    shutil.copytree(FIXTURES, tmp_path / "data", ignore=shutil.ignore_patterns("*.py"))
    return tmp_path / "data"


def write_image(path, mode="RGB", size=(10, 8), value=200):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode in ("L", "P") else (value,) * len(mode)).save(path)


def write_png16(path, values):
    """A 16-bit PNG of ``values`` (uint16 ``[H, W]`` grey or ``[H, W, 3]`` RGB), written byte by
    byte (PIL cannot write 16-bit RGB)."""
    values = np.asarray(values, np.uint16)
    height, width = values.shape[:2]
    colour = 2 if values.ndim == 3 else 0
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def truncate(path):
    """Cut ``path`` to half its bytes (PIL's quick ``verify`` still passes a truncated JPEG)."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# --- the catalogue ------------------------------------------------------------------------------


def test_catalogue_is_complete_and_documented():
    expected = {"duts-train", "pascal-s", "msra-b", "ecssd", "dut-omron", "voc2012", "cifar10",
                "cifar100", "cityscapes"}
    assert set(DATASETS) == expected
    assert set(SALIENCY) | set(TORCHVISION) == expected
    readme = (FIXTURES.parent / "README.md").read_text()
    for info in DATASETS.values():
        assert info.url.startswith("http") and info.licence and info.citation
        assert info.layout.startswith(info.folder + "/")
        assert info.folder in readme and info.url in readme  # data/README.md states every layout


# --- saliency datasets on the fixtures ----------------------------------------------------------


@pytest.mark.parametrize("name", ["duts-train", "pascal-s"])
def test_saliency_fixture_loads(name):
    ds = saliency_dataset(name, FIXTURES, size=12)
    assert len(ds) == 3
    for i in range(len(ds)):
        image, mask = ds[i]
        assert image.shape == (3, 12, 12) and image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1 and image.max() > 0.5  # not normalised
        assert mask.shape == (12, 12) and mask.dtype == torch.float32
        assert set(mask.unique().tolist()) == {0.0, 1.0}
        # the fixtures' object is bright and its mask covers it
        assert image[0][mask.bool()].mean() > image[0][~mask.bool()].mean() + 0.3


def test_files_are_in_name_order_and_masks_follow_them():
    ds = saliency_dataset("pascal-s", FIXTURES, size=8)
    assert [p.name for p in ds.images] == ["1.jpg", "10.jpg", "2.jpg"]  # by name, not number
    assert [p.stem for p in ds.masks] == [p.stem for p in ds.images]
    duts = saliency_dataset("duts-train", FIXTURES, size=8)
    assert [p.stem for p in duts.images] == DUTS_NAMES


def test_limit_keeps_the_first_images():
    ds = saliency_dataset("duts-train", FIXTURES, size=8, limit=2)
    assert len(ds) == 2 and [p.stem for p in ds.images] == DUTS_NAMES[:2]
    full = saliency_dataset("duts-train", FIXTURES, size=8)
    assert torch.equal(ds[1][0], full[1][0])
    assert len(saliency_dataset("duts-train", FIXTURES, size=8, limit=100)) == 3
    with pytest.raises(ValueError, match="positive"):
        saliency_dataset("duts-train", FIXTURES, size=8, limit=0)


def test_grey_fixture_image_becomes_three_equal_channels():
    image, _ = saliency_dataset("pascal-s", FIXTURES, size=8)[1]  # 10.jpg is greyscale
    assert Image.open(FIXTURES / "PASCAL-S" / "Imgs" / "10.jpg").mode == "L"
    assert image.shape == (3, 8, 8)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_any_image_mode_becomes_rgb(tmp_path, mode):
    write_image(tmp_path / "img" / "a.png", mode=mode, value=255)
    image, mask = ImageFolderDataset(tmp_path / "img", size=5)[0]
    assert mask is None
    assert image.shape == (3, 5, 5) and image.dtype == torch.float32
    if mode != "P":
        assert torch.allclose(image, torch.ones(3, 5, 5))


def test_resize_is_bilinear_and_mask_threshold_is_half(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, 4:] = 255  # left half black, right half white
    Image.fromarray(img).save(tmp_path / "a.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 4:] = 255
    (tmp_path / "m").mkdir()
    Image.fromarray(mask).save(tmp_path / "m" / "a.png")
    (tmp_path / "i").mkdir()
    shutil.move(tmp_path / "a.png", tmp_path / "i" / "a.png")
    image, m = ImageFolderDataset(tmp_path / "i", size=16, mask_dir=tmp_path / "m")[0]
    row = image[0, 0]
    assert row[0] == 0 and row[-1] == 1 and 0 < row[7] < 1  # interpolated, not nearest
    assert torch.equal(m[0], (row >= 0.5).float())  # same interpolation, thresholded at 0.5
    assert m.sum() == 128


def test_truncated_tiny_and_mismatched_files_are_named_before_any_work(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    (tmp_path / "ok").mkdir()
    Image.fromarray(noise).save(tmp_path / "ok" / "a.jpg")
    data = (tmp_path / "ok" / "a.jpg").read_bytes()
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "a.jpg").write_bytes(data[: len(data) // 2])
    with Image.open(tmp_path / "cut" / "a.jpg") as img:
        img.verify()  # PIL's own quick check passes a truncated JPEG
    with pytest.raises(ValueError, match=r"malformed image file .*cut/a\.jpg"):
        ImageFolderDataset(tmp_path / "cut", size=8)
    write_image(tmp_path / "tiny" / "a.png", size=(1, 1))
    with pytest.raises(ValueError, match=r"tiny/a\.png is 1 x 1 px; the book needs at least 8"):
        ImageFolderDataset(tmp_path / "tiny", size=8)
    write_image(tmp_path / "masks" / "a.png", mode="L", size=(32, 48))
    with pytest.raises(ValueError, match=r"mask .*masks/a\.png is \(32, 48\) px but its image"):
        ImageFolderDataset(tmp_path / "ok", size=8, mask_dir=tmp_path / "masks")


def test_exif_orientation_is_respected(tmp_path):
    img = np.zeros((8, 12, 3), np.uint8)  # 12 wide, 8 high, white top rows
    img[:2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    (tmp_path / "i").mkdir()
    Image.fromarray(img).save(tmp_path / "i" / "a.jpg", exif=exif, quality=100)
    images, sizes = image_folder_tensors(tmp_path / "i", 12)
    assert sizes == [(8, 12)]  # shown upright: 8 wide, 12 high
    assert images[0, 0, :, -1].mean() > 0.8 and images[0, 0, :, 0].mean() < 0.2  # top -> right


def test_image_folder_tensors_take_grey_and_colour_files_of_any_size(tmp_path):
    write_image(tmp_path / "a.png", mode="L", size=(30, 20))
    write_image(tmp_path / "b.jpg", size=(16, 40))
    images, sizes = image_folder_tensors(tmp_path, 24)
    assert images.shape == (2, 3, 24, 24) and sizes == [(30, 20), (16, 40)]


def test_image_folder_without_masks_and_non_image_files_skipped(tmp_path):
    for name in ["b.JPG", "a.bmp", "c.jpeg", ".hidden.png"]:
        write_image(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(tmp_path, size=4)
    assert [p.name for p in ds.images] == ["a.bmp", "b.JPG", "c.jpeg"]


# --- torchvision datasets on the fixtures -------------------------------------------------------


def test_voc2012_fixture_loads_through_torchvision():
    train = torchvision_dataset("voc2012", FIXTURES, "train")
    val = torchvision_dataset("voc2012", FIXTURES, "val")
    assert len(train) == 1 and len(val) == 1
    assert len(torchvision_dataset("voc2012", FIXTURES, "trainval")) == 2
    image, target = train[0]
    assert image.mode == "RGB" and image.size == (20, 16)
    assert target.mode == "P" and target.size == (20, 16)
    assert set(np.unique(np.array(target))) == {0, 15, 255}  # background, person, boundary
    assert set(np.unique(np.array(val[0][1]))) == {0, 8, 255}  # cat


def test_cityscapes_fixture_loads_through_torchvision():
    ds = torchvision_dataset("cityscapes", FIXTURES, "train",
                             target_type=["semantic", "instance", "color", "polygon"])
    assert len(ds) == 2
    assert [Path(p).name for p in ds.images] == ["aachen_000000_000019_leftImg8bit.png",
                                                 "aachen_000001_000019_leftImg8bit.png"]
    image, (semantic, instance, color, polygon) = ds[0]
    assert image.mode == "RGB" and image.size == (32, 16)
    assert set(np.unique(np.array(semantic))) == {7, 23, 26}  # road, sky, car
    assert 26000 in np.unique(np.array(instance))
    assert color.size == (32, 16) and polygon["imgWidth"] == 32
    transformed = torchvision_dataset("cityscapes", FIXTURES, "train", target_type="semantic",
                                      transform=lambda im: torch.tensor(np.array(im)))
    assert transformed[1][0].shape == (16, 32, 3)


def test_fixture_root_passes_the_existence_check():
    for name in ["duts-train", "pascal-s", "voc2012", "cityscapes"]:
        root = dataset_root(name, FIXTURES)
        assert root == FIXTURES / DATASETS[name].folder


# --- errors -------------------------------------------------------------------------------------


def test_unknown_dataset_lists_the_known_names():
    for call in (lambda: dataset_root("imagenet", FIXTURES),
                 lambda: saliency_dataset("duts", FIXTURES, 8),
                 lambda: torchvision_dataset("cifar", FIXTURES, "train")):
        with pytest.raises(ValueError, match="unknown dataset") as err:
            call()
        assert "duts-train" in str(err.value) and "cityscapes" in str(err.value)


def test_wrong_loader_for_a_dataset_is_refused():
    with pytest.raises(ValueError, match="torchvision_dataset"):
        saliency_dataset("voc2012", FIXTURES, 8)
    with pytest.raises(ValueError, match="saliency_dataset"):
        torchvision_dataset("duts-train", FIXTURES, "train")
    with pytest.raises(ValueError, match="split"):
        torchvision_dataset("voc2012", FIXTURES, "test")


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_missing_dataset_names_path_url_and_layout(tmp_path, name):
    info = DATASETS[name]
    with pytest.raises(DatasetNotFoundError) as err:
        dataset_root(name, tmp_path)
    message = str(err.value)
    assert repr(name) in message and info.url in message
    assert f"Looked in: {tmp_path / info.folder}" in message
    assert info.layout.splitlines()[1].strip() in message  # the expected layout is spelled out
    assert err.value.dataset == name and err.value.path == tmp_path / info.folder
    assert isinstance(err.value, FileNotFoundError)


def test_missing_data_root_is_named(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist") as err:
        saliency_dataset("pascal-s", tmp_path / "nowhere", 8)
    assert str(tmp_path / "nowhere") in str(err.value)
    assert "https://cbs.ic.gatech.edu/salobj/" in str(err.value)


def test_missing_and_empty_parts_are_named(data_root):
    shutil.rmtree(data_root / "DUTS-TR" / "DUTS-TR-Mask")
    with pytest.raises(DatasetNotFoundError, match="'DUTS-TR-Mask' is missing") as err:
        saliency_dataset("duts-train", data_root, 8)
    assert err.value.path == data_root / "DUTS-TR" / "DUTS-TR-Mask"
    for f in (data_root / "PASCAL-S" / "Imgs").iterdir():
        f.unlink()
    with pytest.raises(DatasetNotFoundError, match="'Imgs' is empty"):
        dataset_root("pascal-s", data_root)


def test_folder_without_images_is_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no image file"):
        ImageFolderDataset(tmp_path, size=8)
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError, match="no image file"):
        ImageFolderDataset(tmp_path, size=8)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        ImageFolderDataset(tmp_path / "absent", size=8)


def test_dataset_whose_folder_holds_no_image_says_where_to_get_it(data_root):
    images = data_root / "PASCAL-S" / "Imgs"
    for f in images.iterdir():
        f.rename(f.with_suffix(".txt"))
    with pytest.raises(DatasetNotFoundError, match="no image file") as err:
        saliency_dataset("pascal-s", data_root, 8)
    assert "https://cbs.ic.gatech.edu/salobj/" in str(err.value) and str(images) in str(err.value)


def test_malformed_image_is_named_before_any_work(data_root):
    bad = data_root / "DUTS-TR" / "DUTS-TR-Image" / "ILSVRC2012_test_00000018.jpg"
    bad.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match="malformed image file") as err:
        saliency_dataset("duts-train", data_root, 8)
    assert str(bad) in str(err.value)
    assert len(saliency_dataset("duts-train", data_root, 8, limit=1)) == 1  # not kept: not read


def test_malformed_mask_is_named(data_root):
    bad = data_root / "PASCAL-S" / "Masks" / "2.png"
    bad.write_bytes(bad.read_bytes()[:60])  # a truncated PNG
    with pytest.raises(ValueError, match="2.png"):
        saliency_dataset("pascal-s", data_root, 8)


def test_missing_mask_is_named(data_root):
    (data_root / "PASCAL-S" / "Masks" / "10.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="no mask with the same stem") as err:
        saliency_dataset("pascal-s", data_root, 8)
    assert "10.jpg" in str(err.value) and "https://cbs.ic.gatech.edu/salobj/" in str(err.value)
    assert len(saliency_dataset("pascal-s", data_root, 8, limit=1)) == 1  # 1.jpg has its mask


def test_ambiguous_masks_are_refused(data_root):
    write_image(data_root / "PASCAL-S" / "Masks" / "1.bmp", mode="L")
    with pytest.raises(ValueError, match="two masks share the stem '1'"):
        saliency_dataset("pascal-s", data_root, 8)


def test_voc_split_or_listed_file_missing(data_root):
    voc = data_root / "VOCdevkit" / "VOC2012"
    (voc / "ImageSets" / "Segmentation" / "val.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="'val.txt' is missing"):
        torchvision_dataset("voc2012", data_root, "val")
    (voc / "SegmentationClass" / "2007_000032.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="'2007_000032.png' is missing") as err:
        torchvision_dataset("voc2012", data_root, "train")
    assert "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/" in str(err.value)


def test_cityscapes_split_or_target_missing(data_root):
    with pytest.raises(DatasetNotFoundError, match="'val' is missing") as err:
        torchvision_dataset("cityscapes", data_root, "val")
    assert str(data_root / "cityscapes" / "leftImg8bit" / "val") in str(err.value)
    gt = data_root / "cityscapes" / "gtFine" / "train" / "aachen"
    (gt / "aachen_000001_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="gtFine_labelIds.png' is missing"):
        torchvision_dataset("cityscapes", data_root, "train", target_type="semantic")


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_missing_incomplete_or_rejected(tmp_path, name):
    info = DATASETS[name]
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        torchvision_dataset(name, tmp_path, "train")
    folder = tmp_path / info.folder
    folder.mkdir()
    for part in info.required[:-1]:
        (folder / part).write_bytes(b"not the real file")
    with pytest.raises(DatasetNotFoundError, match=f"{info.required[-1]!r} is missing"):
        torchvision_dataset(name, tmp_path, "test")
    (folder / info.required[-1]).write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="is empty"):
        torchvision_dataset(name, tmp_path, "test")
    (folder / info.required[-1]).write_bytes(b"not the real file")
    # our check passes; torchvision's md5 check rejects the files, and we say so clearly
    with pytest.raises(DatasetNotFoundError, match="md5") as err:
        torchvision_dataset(name, tmp_path, "train")
    assert info.url in str(err.value)
    with pytest.raises(ValueError, match="split"):
        torchvision_dataset(name, tmp_path, "val")


# --- the fixtures are what the script makes -----------------------------------------------------


def test_make_fixtures_reproduces_the_shipped_fixtures(tmp_path):
    runpy.run_path(str(FIXTURES / "make_fixtures.py"), run_name="fixtures")["main"](tmp_path)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    shipped = sorted(p.relative_to(FIXTURES) for p in FIXTURES.rglob("*")
                     if p.is_file() and p.suffix != ".py")
    assert made == shipped
    assert sum((FIXTURES / p).stat().st_size for p in shipped) < 16_000  # tiny
    for p in made:  # PNG, JSON and text bytes are exact; JPEG pixels may vary with libjpeg
        if p.suffix == ".jpg":
            a, b = (np.asarray(Image.open(r / p), np.int16) for r in (tmp_path, FIXTURES))
            assert np.abs(a - b).max() <= 8
        else:
            assert filecmp.cmp(tmp_path / p, FIXTURES / p, shallow=False), p


# --- the real datasets, where present (set POSINFO_DATA_ROOT) ------------------------------------

REAL = os.environ.get("POSINFO_DATA_ROOT")
SIZES = {"duts-train": 10_553, "pascal-s": 850, "msra-b": 5_000, "ecssd": 1_000,
         "dut-omron": 5_168}


@pytest.mark.skipif(REAL is None, reason="POSINFO_DATA_ROOT is not set")
@pytest.mark.parametrize("name", sorted(SIZES))
def test_real_saliency_dataset(name):
    try:
        dataset_root(name, REAL)
    except DatasetNotFoundError:
        pytest.skip(f"{name} is not under {REAL}")
    ds = saliency_dataset(name, REAL, size=32)
    assert len(ds) == SIZES[name]
    image, mask = ds[0]
    assert image.shape == (3, 32, 32) and mask.shape == (32, 32)


@pytest.mark.skipif(REAL is None, reason="POSINFO_DATA_ROOT is not set")
@pytest.mark.parametrize("name, split, size", [("cifar10", "test", 10_000),
                                               ("cifar100", "test", 10_000),
                                               ("voc2012", "val", 1_449),
                                               ("cityscapes", "val", 500)])
def test_real_torchvision_dataset(name, split, size):
    try:
        dataset_root(name, REAL)
    except DatasetNotFoundError:
        pytest.skip(f"{name} is not under {REAL}")
    assert len(torchvision_dataset(name, REAL, split)) == size


# --- 16-bit files, formats the book does not read, a file for a folder ----------------------------

GREY = round(0.61 * 65535)  # a 0.61 grey in 16 bits


def test_16_bit_grey_png_keeps_its_grey_level(tmp_path):
    write_png16(tmp_path / "a.png", np.full((12, 10), GREY))
    with Image.open(tmp_path / "a.png") as img:
        assert img.mode.startswith("I")  # PIL's convert("RGB") would clip it to white
    images, sizes = image_folder_tensors(tmp_path, 6)
    assert sizes == [(10, 12)]
    assert torch.allclose(images, torch.full_like(images, 0.61), atol=1 / 255)


def test_16_bit_rgb_png_keeps_its_colour(tmp_path):
    write_png16(tmp_path / "a.png", np.broadcast_to([GREY, 65535, 300], (12, 10, 3)))
    image = image_folder_tensors(tmp_path, 6)[0][0]
    expected = torch.tensor([0.61, 1.0, 300 / 65535])[:, None, None].expand(3, 6, 6)
    assert torch.allclose(image, expected, atol=1 / 255)


def test_16_bit_mask_is_read_on_its_own_scale(tmp_path):
    write_image(tmp_path / "i" / "a.png", size=(10, 8))
    mask = np.full((8, 10), round(0.3 * 65535))  # below half: background (clipped, it was 1)
    mask[:, 5:] = GREY  # above half: salient
    write_png16(tmp_path / "m" / "a.png", mask)
    _, m = ImageFolderDataset(tmp_path / "i", 10, tmp_path / "m")[0]
    assert m[:, 5:].all() and not m[:, :5].any()


def test_32_bit_grey_is_read_as_16_bits_up_to_65535_and_float_pixels_are_refused(tmp_path):
    (tmp_path / "ok").mkdir()
    Image.fromarray(np.full((12, 10), GREY, np.int32)).save(tmp_path / "ok" / "a.png", "TIFF")
    with Image.open(tmp_path / "ok" / "a.png") as img:
        assert img.mode == "I"  # PIL opens by content: a 32-bit grey file
    image = image_folder_tensors(tmp_path / "ok", 6)[0]
    assert torch.allclose(image, torch.full_like(image, 0.61), atol=1 / 255)
    (tmp_path / "deep").mkdir()
    Image.fromarray(np.full((12, 10), 70_000, np.int32)).save(tmp_path / "deep" / "a.png", "TIFF")
    with pytest.raises(ValueError, match=r"deep/a\.png has grey values in \[70000, 70000\], beyond 16"):
        ImageFolderDataset(tmp_path / "deep", 6)
    (tmp_path / "float").mkdir()
    Image.fromarray(np.full((12, 10), 0.61, np.float32)).save(tmp_path / "float" / "a.png", "TIFF")
    with pytest.raises(ValueError, match=r"float/a\.png has floating-point pixels"):
        ImageFolderDataset(tmp_path / "float", 6)


@pytest.mark.parametrize("name", ["b.heic", "b.HEIC", "b.webp", "b.tiff", "b.gif", "b.avif"])
def test_image_files_the_book_does_not_read_are_named(tmp_path, name):
    write_image(tmp_path / "a.jpg")
    (tmp_path / name).write_bytes(b"whatever")
    with pytest.raises(ValueError, match=f"1 image file\\(s\\) the book does not read: {name}") as err:
        ImageFolderDataset(tmp_path, 4)
    assert ", ".join(IMAGE_EXTENSIONS) in str(err.value) and str(tmp_path) in str(err.value)


def test_a_folder_of_heic_photos_with_two_jpegs_is_refused_not_read_as_two_images(tmp_path):
    for i in range(300):
        (tmp_path / f"IMG_{i:04d}.heic").write_bytes(b"heic")
    write_image(tmp_path / "a.jpg")
    write_image(tmp_path / "b.jpg")
    with pytest.raises(ValueError, match=r"holds 300 image file\(s\) the book does not read: "
                                         r"IMG_0000\.heic, .*IMG_0004\.heic and 295 more"):
        image_folder_tensors(tmp_path, 4)
    (tmp_path / ".IMG_9999.heic").write_bytes(b"hidden: skipped")
    for i in range(300):
        (tmp_path / f"IMG_{i:04d}.heic").unlink()
    assert len(image_folder_tensors(tmp_path, 4)[0]) == 2


def test_a_file_given_as_the_folder_is_named(tmp_path):
    write_image(tmp_path / "a.jpg")
    with pytest.raises(ValueError, match=f"{tmp_path / 'a.jpg'} is a file; a folder of images"):
        ImageFolderDataset(tmp_path / "a.jpg", 4)


# --- every file of a dataset decoded before any work ----------------------------------------------


def test_grid_min_side_is_the_grid_never_below_the_floor():
    assert grid_min_side(28) == 28 and grid_min_side(3) == MIN_SIDE == 8


def test_verify_dataset_passes_the_fixtures_and_returns_their_sizes():
    assert verify_dataset("duts-train", FIXTURES) == [(20, 16)] * 3
    assert verify_dataset("pascal-s", FIXTURES, limit=2, min_side=16) == [(20, 16)] * 2
    assert verify_dataset("voc2012", FIXTURES, "trainval") == [(20, 16)] * 2
    assert verify_dataset("cityscapes", FIXTURES, "train") == [(32, 16)] * 2


def test_verify_dataset_refuses_what_it_cannot_verify():
    with pytest.raises(ValueError, match="md5"):
        verify_dataset("cifar10", FIXTURES, "train")
    with pytest.raises(ValueError, match="takes no split"):
        verify_dataset("duts-train", FIXTURES, "train")
    with pytest.raises(ValueError, match="need one"):
        verify_dataset("voc2012", FIXTURES)
    with pytest.raises(ValueError, match="limit must be positive"):
        verify_dataset("voc2012", FIXTURES, "train", limit=0)
    with pytest.raises(ValueError, match="unknown dataset"):
        verify_dataset("duts", FIXTURES)


def test_truncated_duts_image_is_named(data_root):
    bad = data_root / "DUTS-TR" / "DUTS-TR-Image" / "ILSVRC2012_test_00000018.jpg"
    truncate(bad)
    with pytest.raises(ValueError, match="dataset 'duts-train': malformed image file") as err:
        verify_dataset("duts-train", data_root)
    assert str(bad) in str(err.value)
    assert len(verify_dataset("duts-train", data_root, limit=1)) == 1  # beyond the limit: unread


def test_duts_mask_of_another_size_is_named(data_root):
    mask = data_root / "DUTS-TR" / "DUTS-TR-Mask" / "n01532829_13482.png"
    write_image(mask, mode="L", size=(16, 20))
    with pytest.raises(ValueError, match=f"dataset 'duts-train': mask {mask} is \\(16, 20\\) px "
                                         "but its image .*n01532829_13482.jpg is \\(20, 16\\)"):
        verify_dataset("duts-train", data_root)


def test_image_below_the_grid_is_named(data_root):
    tiny = data_root / "PASCAL-S" / "Imgs" / "2.jpg"
    write_image(tiny, size=(1, 1))
    write_image(data_root / "PASCAL-S" / "Masks" / "2.png", mode="L", size=(1, 1))
    with pytest.raises(ValueError, match=f"dataset 'pascal-s': image file {tiny} is 1 x 1 px; the "
                                         "book needs at least 8 px on each side$"):
        verify_dataset("pascal-s", data_root)
    with pytest.raises(ValueError, match=r"1\.jpg is 20 x 16 px; the book needs at least 17 px on "
                                         "each side here: this run reads maps on a grid of 17"):
        verify_dataset("pascal-s", data_root, min_side=17)


def test_voc_truncated_image_and_mask_of_another_size_are_named(data_root):
    voc = data_root / "VOCdevkit" / "VOC2012"
    truncate(voc / "JPEGImages" / "2007_000039.jpg")
    verify_dataset("voc2012", data_root, "train")  # 2007_000039 is in val
    with pytest.raises(ValueError, match=r"dataset 'voc2012': malformed image file .*2007_000039\.jpg"):
        verify_dataset("voc2012", data_root, "val")
    mask = voc / "SegmentationClass" / "2007_000032.png"
    Image.open(mask).resize((10, 8)).save(mask)
    with pytest.raises(ValueError, match=r"mask .*2007_000032\.png is \(10, 8\) px but its image"):
        verify_dataset("voc2012", data_root, "train")
    with pytest.raises(ValueError, match=r"2007_000032\.jpg is 20 x 16 px; the book needs at least 32"):
        verify_dataset("voc2012", data_root, "train", min_side=32)


def test_cityscapes_truncated_image_and_label_map_of_another_size_are_named(data_root):
    city = data_root / "cityscapes"
    labels = city / "gtFine" / "train" / "aachen" / "aachen_000001_000019_gtFine_labelIds.png"
    Image.open(labels).resize((16, 8)).save(labels)
    with pytest.raises(ValueError, match=r"dataset 'cityscapes': mask .*000001_000019_gtFine_label"
                                         r"Ids\.png is \(16, 8\) px but its image"):
        verify_dataset("cityscapes", data_root, "train")
    assert verify_dataset("cityscapes", data_root, "train", limit=1) == [(32, 16)]
    image = city / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000019_leftImg8bit.png"
    truncate(image)
    with pytest.raises(ValueError, match=f"malformed image file {image}"):
        verify_dataset("cityscapes", data_root, "train")


def test_stray_image_of_another_format_in_a_dataset_is_named(data_root):
    (data_root / "ECSSD").mkdir()
    shutil.copytree(data_root / "PASCAL-S" / "Imgs", data_root / "ECSSD" / "images")
    shutil.copytree(data_root / "PASCAL-S" / "Masks", data_root / "ECSSD" / "ground_truth_mask")
    write_image(data_root / "ECSSD" / "images" / "0001.webp")
    with pytest.raises(ValueError, match=r"dataset 'ecssd': .*images holds 1 image file\(s\) the "
                                         r"book does not read: 0001\.webp"):
        verify_dataset("ecssd", data_root)
