"""Run every chapter's ``paper`` profile end to end on the CPU, on fake data in the real on-disk
formats, at tiny counts (``make paper-check``; issue 19).

    .venv/bin/python tools/paper_check.py [--work DIR] [--keep] [CHAPTER ...]

What it writes, in a fresh work folder (a temporary one unless ``--work`` names one):
``data/`` with every dataset the paper profile reads (``posinfo.data.fake``: DUT-S, PASCAL-S,
MSRA-B, ECSSD, DUT-OMRON, VOC 2012, CIFAR-10, Cityscapes val) and chapter 7's DeepLabv3 weights
file; ``torch/hub/checkpoints/`` with randomly initialised ImageNet state dicts under their
official names (``TORCH_HOME`` points there); an IPython start-up file that turns off
torchvision's CIFAR md5 check in the chapters' kernels (fake files cannot match the official
sums). Then each chapter runs through papermill with ``profile=paper``, ``device=cpu`` and the
knobs in ``KNOBS``, which shrink counts, sizes and epochs but keep the profile's datasets,
weights and code paths: the ImageNet encoders at full width, the random-weight comparisons, every
dataset loader and ``validate``'s checks of every file.

Two paths are left out: the least-squares readouts on all encoder levels together, in chapter 1
(``least_squares=False``) and chapter 4 (``least_squares_all=False``; its deciding single stage
is fitted, on stage f3, d = 2,305, rather than the profile's f5, d = 4,609). Their normal
equations have d = 13,249 unknowns for VGG16's five levels and 34,561 for ResNet-152's four, whatever
the image size: in float64 one Cholesky factorisation of the first takes about 25 s on one core
and the ridge search needs about ten per fit; the second needs about 29 GB. The smoke profile
runs the same function on narrow encoders. Everything runs on the CPU, so no CUDA path is
checked here.

The numbers these runs make mean nothing (random weights, a handful of noise images); the check
passes when every chapter runs to the end and writes its ``results.csv`` and ``claims.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

_PROBE = dict(image_size=32, feature_size=8, n_train=6, n_test=None, n_synthetic=2,
              readout_epochs=1, replicates=2)
# Per chapter: the paper profile's knobs this check changes (everything else stays the profile's).
KNOBS: dict[str, dict[str, Any]] = {
    "01_existence": _PROBE | dict(least_squares=False),
    "02_ablations": _PROBE,
    "03_padding": _PROBE | dict(nopad_image_size=224, nopad_feature_size=8, kayhan_seeds=1,
                                kayhan_steps=2),
    "04_padding_in_tasks": dict(image_size=196, n_train=4, n_test=2, epochs=1, batch_size=2,
                                decoder_channels=8, probe_train=4, probe_test=2, n_synthetic=2,
                                feature_size=8, readout_epochs=1, twin_train=4, twin_test=2,
                                readout_seeds=1, replicates=2,
                                probe_stage="f3", least_squares_all=False),
    "05_gap_channels": dict(grid_sizes=[3, 5], n_train=8, n_val=4, n_test=None, test_placements=1,
                            batch_size=4,
                            location_epochs=1, image_epochs=1, replicates=2),
    "06_augshift": dict(epochs=1, batch_size=8, seeds=2, pairs=1, curve_shifts=[1, 8],
                        sweep_lams=[0.0, 1.0]),
    "07_region_attacks": dict(image_size=64, n_rank=4, n_eval=4, batch_size=2),
}
IMAGENET_ARCHS = ("vgg16", "vgg16_bn", "resnet152")  # chapters 1-3: vgg16, resnet152; 4: vgg16_bn
N_IMAGES = 8  # per dataset (CIFAR: per batch file; Cityscapes: the val split)
STARTUP = "from posinfo.data.fake import skip_cifar_md5\nskip_cifar_md5()\n"


def write_inputs(work: Path) -> dict[str, str]:
    """Fake datasets, weights and the kernels' start-up file under ``work``; returns the
    environment the chapters run in."""
    from posinfo.data import fake
    from posinfo.models.segmenter import DEEPLAB_FILE

    env = {"TORCH_HOME": str(work / "torch"), "IPYTHONDIR": str(work / "ipython"),
           "POSINFO_CACHE": str(work / "cache")}
    os.environ.update(env)  # imagenet_weights_file reads TORCH_HOME
    data = work / "data"
    fake.write_all_saliency(data, N_IMAGES)
    fake.write_voc2012(data, N_IMAGES)
    fake.write_cifar10(data, N_IMAGES)
    fake.write_cityscapes(data, N_IMAGES)
    fake.write_deeplabv3(data / DEEPLAB_FILE)
    for arch in IMAGENET_ARCHS:
        fake.write_imagenet_weights(arch)
    startup = work / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-fake-cifar.py").write_text(STARTUP)
    return env


def run_chapter(chapter: str, work: Path) -> float:
    """Execute ``chapter``'s paper profile with ``KNOBS`` into ``work``; returns its seconds.

    Raises:
        SystemExit: Naming the chapter and its executed notebook, if it failed or wrote no results.
    """
    import papermill

    out_dir, executed = work / "results", work / "executed" / f"{chapter}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    params = KNOBS[chapter] | dict(profile="paper", device="cpu", data_root=str(work / "data"),
                                   out_dir=str(out_dir))
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(BOOK / f"{chapter}.ipynb"), str(executed),
                                   parameters=params, kernel_name="python3", cwd=str(BOOK),
                                   progress_bar=False)
    except papermill.PapermillExecutionError as err:
        sys.exit(f"{chapter}: the paper profile failed ({err.ename}: {err.evalue}); "
                 f"see {executed}")
    missing = [f for f in ("results.csv", "claims.json") if not (out_dir / chapter / f).is_file()]
    if missing:
        sys.exit(f"{chapter}: the paper profile wrote no {', '.join(missing)} in {out_dir / chapter}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Write the fake inputs, then run the chapters named (all by default) one after another."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", default=list(KNOBS), metavar="CHAPTER",
                        help=f"chapters to run (default: all): {', '.join(KNOBS)}")
    parser.add_argument("--work", type=Path, help="work folder, empty or new, kept afterwards "
                        "(default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder afterwards")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.chapters) - set(KNOBS))
    if unknown:
        parser.error(f"unknown chapters {unknown}; known: {list(KNOBS)}")
    if args.work and args.work.exists() and not args.work.is_dir():
        parser.error(f"--work {args.work} is a file, not a folder")
    if args.work and args.work.exists() and any(args.work.iterdir()):
        parser.error(f"--work {args.work} is not empty; the check starts from nothing")
    # absolute: the chapters' kernels run in book/ and read these paths from the environment
    work = (args.work or Path(tempfile.mkdtemp(prefix="paper-check-"))).resolve()
    print(f"work folder: {work} (kept if the check fails)", flush=True)
    start = time.perf_counter()
    write_inputs(work)
    print(f"fake datasets and weights written in {time.perf_counter() - start:.0f} s")
    for chapter in args.chapters:  # a failure exits here and keeps the work folder to look at
        print(f"{chapter}: paper profile ran in {run_chapter(chapter, work):.0f} s", flush=True)
    if not args.keep and not args.work:  # a folder given with --work is always kept
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
