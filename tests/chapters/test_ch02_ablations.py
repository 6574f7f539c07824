import pandas as pd
import pytest
import torch
from posinfo.book.params import resolve
from posinfo.probe.probing import RAW
from posinfo.chapters import ch02_ablations as ablations
from posinfo.models.encoders import build_encoder
from posinfo.probe.features import multilevel_features
from posinfo.probe.readout import PosENet


def config(tmp_path, **knobs):
    return resolve(ablations.SPEC, dict(profile="smoke", seed=0, device="cpu", data_root=str(tmp_path),
                                        out_dir=str(tmp_path / "out")) | knobs)


def test_corners_and_centre_on_a_hand_made_map():
    loss = torch.zeros(2, 8, 8)
    loss[:, :2, :2] = 1.0  # one corner square of side 8/4 = 2
    corners, centre = ablations.corners_and_centre(loss)
    assert corners == pytest.approx(0.25) and centre == 0.0


def test_objects_and_background_is_position_matched():
    # The object always sits on the left half, where the loss is high for position reasons only.
    loss = torch.zeros(4, 4, 4)
    loss[..., :2] = 1.0
    masks = torch.zeros(4, 4, 4)
    masks[:2, :, :2] = 1  # images 0-1: object on the left; images 2-3: background everywhere
    out = ablations.objects_and_background(loss, masks)
    assert out["inside"] == 1.0 and out["background"] == pytest.approx(1 / 3)
    assert out["matched_difference"] == pytest.approx(0.0)  # no content effect at all
    loss[:2, :, :2] += 0.5  # now the object itself raises the loss
    assert ablations.objects_and_background(loss, masks)["matched_difference"] == pytest.approx(0.5)


def test_stage_slices_equal_single_level_features():
    enc = build_encoder("vgg16", width=0.125)
    x = torch.rand(3, 3, 32, 32)
    allf = multilevel_features(enc, x, 4, dtype=torch.float32)
    edges = [0, *torch.tensor(enc.channels).cumsum(0).tolist()]
    inputs = ablations.Inputs(allf, allf, list(zip(edges[:-1], edges[1:])))
    for i in range(5):
        sliced, _ = ablations._select(inputs, f"f{i + 1}")
        assert torch.equal(sliced, multilevel_features(enc, x, 4, levels=[i], dtype=torch.float32))
    assert ablations._select(inputs, "all")[0] is allf


def test_hidden_channels_narrow_the_intermediate_layers():
    net = PosENet(32, n_layers=3, hidden_channels=8)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(32, 8), (8, 8), (8, 1)]
    assert PosENet(4, n_layers=2, hidden_channels=8).body[0].out_channels == 4  # never wider


def test_plan_covers_every_ablation(tmp_path):
    cfg = config(tmp_path)
    todo = ablations.plan(cfg, "vgg16_bn")
    assert {e for e, _, _ in todo} == {"layers", "kernel", "kernel on one stage", "stage"}
    assert {(r.stage, r.kernel) for e, _, r in todo if e == "kernel on one stage"} == {
        ("f2", 1), ("f2", 3), ("f2", 7)}
    stages = sorted(r.stage for e, _, r in todo if e == "stage")
    assert stages == ["all", "f1", "f2", "f3", "f4", "f5"]
    assert {r.layers for e, s, r in todo if e == "layers" and s == RAW} == {1, 2, 3}


def test_validation_before_work(tmp_path):
    with pytest.raises(ValueError, match="depths 1 and 3"):
        ablations.validate(config(tmp_path, depths=[1, 2]))
    with pytest.raises(ValueError, match="one VGG and one ResNet"):
        ablations.validate(config(tmp_path, encoders=["vgg16"]))
    with pytest.raises(ValueError, match=r"parameter 'kernels' got \[1, 4\] \(4 does not fit\)"):
        config(tmp_path, kernels=[1, 4])
    ablations.validate(config(tmp_path))


def fake_run(cfg, spc, content_boost, replicates=3, jitter=0.01):
    """A run whose readouts score ``spc(experiment, source, readout, pattern)`` and whose content
    loss is higher inside the object masks by ``content_boost``, in each replicate, moved by
    ``jitter`` times (replicate - 1)."""
    import pandas as pd
    masks = torch.zeros(4, 8, 8)
    masks[:2, 2:6, 2:6] = 1
    tables = []
    for rep in range(replicates):
        shift = jitter * (rep - 1)
        rows = [dict(experiment=experiment, source=source, layers=r.layers, kernel=r.kernel,
                     stage=r.stage, pattern=p, metric="spc_paper", value=spc(experiment, source, r, p) + shift)
                for experiment, source, r in ablations.plan(cfg, "vgg16_bn") for p in cfg.patterns]
        corner_heavy = torch.ones(4, 8, 8)
        corner_heavy[:, 2:6, 2:6] = 0.2 + shift
        content = {RAW: corner_heavy, "vgg16_bn": 0.2 + (content_boost + shift) * masks,
                   "resnet18": 0.2 + (content_boost + shift) * masks}
        tables.append(pd.concat([pd.DataFrame(rows), ablations.content_rows(content, masks, 8)])
                      .assign(replicate=rep))
    return ablations.AblationRun(pd.concat(tables, ignore_index=True), content, {}, masks)


def paper_like(experiment, source, r, p):
    if source == RAW:
        return 0.05
    if experiment == "stage":
        return 0.9 if r.stage == "all" else 0.1 + 0.15 * int(r.stage[1])
    return 0.6 + 0.1 * r.layers + 0.02 * r.kernel


def test_claims_hold_on_paper_like_runs_and_can_fail(tmp_path):
    cfg = config(tmp_path)
    run = fake_run(cfg, paper_like, content_boost=0.3)
    claims = ablations.check_claims(run, cfg)
    assert all(c.holds for c in claims) and all(c.n == 3 for c in claims)
    assert all(c.control != "holds" for c in claims)
    worse = lambda e, s, r, p: 0.9 - paper_like(e, s, r, p) if s != RAW else 0.5  # noqa: E731
    run = fake_run(cfg, worse, content_boost=-0.1)
    verdicts = {c.id: c.verdict for c in ablations.check_claims(run, cfg)}
    assert verdicts == {"A1": "fails", "A2": "fails", "A3": "fails", "A4": "fails",
                        "A5": "fails", "A6": "holds", "A7": "fails"}


def test_a2_is_decided_where_the_1x1_readout_has_headroom(tmp_path):
    """A2 reads the kernel sweep on ``kernel_stage``: all stages at the ceiling for every kernel
    do not decide it, and a flat single-stage sweep fails it whatever all stages do."""
    cfg = config(tmp_path)
    ceiling = lambda e, s, r, p: 0.97 if e == "kernel" and s != RAW else paper_like(e, s, r, p)  # noqa: E731
    assert {c.id: c.verdict for c in ablations.check_claims(fake_run(cfg, ceiling, 0.3), cfg)}["A2"] == "holds"
    flat = lambda e, s, r, p: 0.5 if e == "kernel on one stage" else paper_like(e, s, r, p)  # noqa: E731
    assert {c.id: c.verdict for c in ablations.check_claims(fake_run(cfg, flat, 0.3), cfg)}["A2"] == "fails"


def test_no_claim_holds_on_null_inputs(tmp_path):
    """Every readout equally good whatever its depth, kernel or stage, and a content loss that is
    a position-blind readout's everywhere: no finding holds but A3's absence; a raw-image
    readout as good as the encoder's fails A3."""
    cfg = config(tmp_path)
    run = fake_run(cfg, lambda e, s, r, p: 0.0, content_boost=0.0)
    blind = ablations.blind_content_loss(8, 4)
    run.table = run.table[run.table.experiment != "content"]
    run.table = pd.concat([run.table] + [ablations.content_rows(
        {s: blind for s in (RAW, "vgg16_bn", "resnet18")}, run.natural_masks, 8).assign(replicate=r)
        for r in range(3)])
    assert {c.id for c in ablations.check_claims(run, cfg) if c.holds} == {"A3"}
    run = fake_run(cfg, lambda e, s, r, p: 0.8, content_boost=0.0)
    assert "A3" not in {c.id for c in ablations.check_claims(run, cfg) if c.holds}


def test_random_weight_sources_do_not_replace_the_studied_encoders(tmp_path):
    from posinfo.probe.probing import RawImage, Source
    cfg = config(tmp_path, compare_random=True)
    trained, random = (Source("vgg16_bn", w, torch.nn.Identity()) for w in ("synthetic", "random"))
    chosen = ablations.studied_sources([Source(RAW, "none", RawImage()), trained, random], cfg)
    assert chosen["vgg16_bn"] is trained and set(chosen) == {RAW, "vgg16_bn"}


def test_prose_numbers_quote_both_kernel_sweeps(tmp_path):
    cfg = config(tmp_path)
    flat = lambda e, s, r, p: 0.5 if e == "kernel on one stage" else paper_like(e, s, r, p)  # noqa: E731
    run = fake_run(cfg, flat, 0.3)
    words = ablations.prose_numbers(run, ablations.check_claims(run, cfg), cfg)
    first = cfg.patterns[0]
    assert words["kernel_all"].startswith(f"{first} .720 -> .840")  # 0.6 + 0.1 + 0.02 k
    assert words["kernel_stage_scores"].startswith(f"{first} .500 -> .500")
    assert words["kernel_stage"] == "stage f2 alone" and words["a2"] == "does not hold"
