"""Binder installs the book's pins, with the CPU-only wheels of torch and torchvision
(binder/requirements.txt), and then the library (binder/postBuild)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CPU_ONLY = ("torch", "torchvision")  # the packages Binder takes from CPU_INDEX, as <version>+cpu
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def read_requirements(path: Path) -> tuple[dict[str, list[str]], list[str]]:
    """(every package's pinned versions, the extra index URLs) of a requirements file, following
    its ``-r`` includes (relative to the including file, as pip reads them). A line that is not a
    comment, a pin ``name==version``, ``-r FILE`` or ``--extra-index-url URL`` is an error."""
    pins: dict[str, list[str]] = {}
    indexes: list[str] = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        option, _, value = line.partition(" ")
        if option in ("-r", "--requirement"):
            more, more_indexes = read_requirements(path.parent / value.strip())
            for name, versions in more.items():
                pins.setdefault(name, []).extend(versions)
            indexes += more_indexes
        elif option == "--extra-index-url":
            indexes.append(value.strip())
        elif match := PIN.match(line):
            pins.setdefault(match[1].lower().replace("_", "-"), []).append(match[2])
        else:
            raise ValueError(f"{path}: unexpected line {line!r}")
    return pins, indexes


def drift(book: Path, binder: Path) -> list[str]:
    """What keeps ``binder`` from installing exactly the pins of ``book``, with torch and
    torchvision as the CPU wheels of the same versions; empty when they agree."""
    want, _ = read_requirements(book)
    got, indexes = read_requirements(binder)
    problems = [] if CPU_INDEX in indexes else [f"no --extra-index-url {CPU_INDEX}"]
    for name, versions in want.items():
        (version,) = versions
        expected = {version, f"{version}+cpu"} if name in CPU_ONLY else {version}
        if name in CPU_ONLY and f"{version}+cpu" not in got.get(name, []):
            problems.append(f"{name}: Binder does not pin the CPU wheel {name}=={version}+cpu")
        if set(got.get(name, [])) - expected or name not in got:
            problems.append(f"{name}: Binder pins {got.get(name)}, requirements.txt {version}")
    problems += [f"{name}: pinned for Binder only" for name in got.keys() - want.keys()]
    return problems


def test_every_book_requirement_is_a_single_pin():
    pins, _ = read_requirements(ROOT / "requirements.txt")
    assert set(CPU_ONLY) <= pins.keys()
    assert all(len(versions) == 1 and "+" not in versions[0] for versions in pins.values())


def test_binder_pins_agree_with_the_book_with_cpu_torch():
    assert drift(ROOT / "requirements.txt", BINDER / "requirements.txt") == []


def test_drift_is_caught(tmp_path):
    (tmp_path / "requirements.txt").write_text("torch==2.1.0\ntorchvision==0.16.0\nnumpy==2.0.0\n")
    binder = tmp_path / "binder"
    binder.mkdir()
    good = f"--extra-index-url {CPU_INDEX}\ntorch==2.1.0+cpu\ntorchvision==0.16.0+cpu\n"
    (binder / "requirements.txt").write_text(good + "-r ../requirements.txt\n")
    assert drift(tmp_path / "requirements.txt", binder / "requirements.txt") == []
    # torch moved on in requirements.txt, Binder still pins the old CPU wheel
    (tmp_path / "requirements.txt").write_text("torch==2.2.0\ntorchvision==0.16.0\nnumpy==2.0.0\n")
    assert drift(tmp_path / "requirements.txt", binder / "requirements.txt") == [
        "torch: Binder does not pin the CPU wheel torch==2.2.0+cpu",
        "torch: Binder pins ['2.1.0+cpu', '2.2.0'], requirements.txt 2.2.0"]
    # a copied pin list that fell behind, and no CPU index
    (binder / "requirements.txt").write_text(
        "torch==2.2.0+cpu\ntorchvision==0.16.0+cpu\ntorch==2.2.0\ntorchvision==0.16.0\n"
        "numpy==1.26.4\nscipy==1.0\n")
    assert drift(tmp_path / "requirements.txt", binder / "requirements.txt") == [
        f"no --extra-index-url {CPU_INDEX}", "numpy: Binder pins ['1.26.4'], requirements.txt 2.0.0",
        "scipy: pinned for Binder only"]


def test_binder_installs_the_library_after_the_pins():
    post = (BINDER / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post and (BINDER / "postBuild").stat().st_mode & 0o111
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
