import json

import pytest
import torch
from posinfo.book import scale
from posinfo.book.scale import GB, Footprint, LiveBytes, Projection, Step, Targets, measure
from torch import nn


def test_the_flops_of_a_convolution_are_two_per_multiply_add():
    fp = measure(nn.Conv2d(3, 5, 3, padding=1, bias=False), (3, 7, 9), train=True)
    assert fp.flops == 2 * 3 * 5 * 3**2 * 7 * 9
    # training adds the weights' gradient (as many FLOPs); the input needs no gradient
    assert fp.train_flops == 2 * fp.flops


def test_a_training_step_counts_each_layers_backward_pass():
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.Conv2d(5, 2, 1, bias=False))
    fp = measure(net, (3, 7, 9), train=True)
    first, second = 2 * 3 * 5 * 9 * 63, 2 * 5 * 2 * 63
    assert fp.flops == first + second
    # the second layer's gradients of its weights and its input, the first layer's of its weights
    assert fp.train_flops == fp.flops + 2 * second + first


def test_the_peak_of_live_activations_matches_the_hand_count():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 1),
                        nn.ReLU(inplace=True), nn.Conv2d(2, 1, 1))
    fp = measure(net, (3, 8, 8))
    # in-place ReLUs add nothing; the widest moment holds the 4- and 2-channel maps, not all three
    assert fp.eval_bytes == (4 + 2) * 8 * 8 * 4
    assert fp.param_bytes == 4 * (3 * 4 * 9 + 4 + 4 * 2 + 2 + 2 + 1)


def test_a_training_step_keeps_what_the_backward_pass_needs():
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.Conv2d(5, 2, 1, bias=False))
    fp = measure(net, (3, 7, 9), train=True)
    # per image at the peak: the first map (kept for the second layer's weight gradient) and the
    # gradient with respect to it
    assert fp.train_bytes == 2 * 5 * 7 * 9 * 4


def test_live_bytes_leaves_out_views_and_in_place_results_and_follows_frees():
    a = torch.empty(10, device="meta")
    with LiveBytes() as live:
        a.view(2, 5).add_(1)
        b = a * 2
        c = b + 1
        del b
    assert (live.created, live.peak, live.live) == (80, 80, 40)
    assert c.shape == (10,)


def test_measure_takes_a_call_and_list_outputs():
    net = nn.Conv2d(3, 2, 1, bias=False)
    fp = measure(net, (3, 4, 4), call=lambda m, x: [m(x), m(x)], train=True)
    assert fp.flops == 2 * (2 * 3 * 2 * 16)


def test_gpu_bytes_of_training_and_inference():
    fp = Footprint(flops=1.0, param_bytes=100, eval_bytes=10, train_flops=3.0, train_bytes=30)
    assert scale.inference_gpu_bytes(fp, 4, 5) == 100 + 4 * (5 + 10)
    # weights, gradients, two Adam states; the batch's inputs and activations
    assert scale.training_gpu_bytes(fp, 4, 5, optimizer_states=2) == 4 * 100 + 4 * (5 + 30)


def test_gpu_hours_follow_the_assumed_rates():
    hour = 3600
    step = Step("x", conv_flops=scale.SUSTAINED_CONV_FLOPS * hour,
                fp32_flops=scale.SUSTAINED_FP32_FLOPS * hour, fp64_flops=scale.SUSTAINED_FP64_FLOPS * hour,
                batches=round(hour / scale.BATCH_OVERHEAD_SECONDS))
    assert step.gpu_hours == pytest.approx(4.0)
    assert Step("y", gpu_bytes=10 * GB).gpu_gb == pytest.approx(scale.ALLOCATOR_FACTOR * 10 + 1)


def _projection(**step) -> Projection:
    return Projection("01_x", (Step("small", gpu_bytes=GB, ram_bytes=GB, disk_bytes=GB),
                               Step("big", **step)), notes=("a note",))


def test_a_chapter_over_a_target_is_flagged():
    ok = _projection(disk_bytes=50 * GB)
    assert ok.fits() == dict(gpu_gb=True, ram_gb=True, disk_gb=True, gpu_hours=True)
    over = _projection(disk_bytes=150 * GB)
    assert over.figures()["disk_gb"] == pytest.approx(151)
    assert over.fits()["disk_gb"] is False and not over.fits_when_split()
    entry = over.to_json()
    assert entry["fits_targets"] is False and entry["fits"]["disk_gb"] is False


def test_hours_over_the_target_fit_as_jobs_only_when_each_job_does():
    hours = 20 * 3600 * scale.SUSTAINED_CONV_FLOPS
    many = _projection(conv_flops=hours, jobs=10)
    assert not many.fits()["gpu_hours"] and many.fits_when_split()
    assert many.largest_job_hours() == pytest.approx(2.0)
    one_big = _projection(conv_flops=hours, jobs=10, job_share=0.5)
    assert one_big.largest_job_hours() == pytest.approx(10.0) and not one_big.fits_when_split()
    assert not _projection(conv_flops=hours, jobs=1).fits_when_split()


def test_targets_can_be_changed():
    strict = Projection("01_x", (Step("s", gpu_bytes=GB),), targets=Targets(gpu_gb=1.0))
    assert strict.fits()["gpu_gb"] is False


def test_the_json_entry_has_the_four_figures_and_the_assumptions():
    entry = _projection(conv_flops=1e15, ram_bytes=40 * GB).to_json()
    json.dumps(entry)  # plain data
    assert set(scale.FIGURES) <= set(entry) and set(entry["assumptions"]) == set(scale.FIGURES)
    assert entry["ram_gb"] == pytest.approx(40 + scale.PROCESS_BYTES / GB)
    assert "big" in entry["assumptions"]["ram_gb"] and entry["notes"] == ["a note"]
    assert [s["what"] for s in entry["steps"]] == ["small", "big"]
