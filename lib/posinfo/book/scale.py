"""A scale model: what a run costs on one GPU, from networks measured on the meta device.

:func:`measure` runs a network on the ``meta`` device (shapes only: no memory is allocated and no
arithmetic is done, so a full-resolution ResNet-152 or DeepLabv3 is measured in a second on any
CPU) and returns its :class:`Footprint` per image: the FLOPs of a forward pass and of a training
step (:class:`~torch.utils.flop_counter.FlopCounterMode`), the bytes of its parameters, and the
peak bytes of the tensors alive at once in a forward pass without gradients and in a training
step (every tensor an operator creates, followed until it is freed).

A run is then a list of :class:`Step` (how many images go through which network, what stays in
memory, what goes to disk), and :class:`Projection` turns the steps into the four figures of
issue 19 (peak GPU memory, peak host memory, disk, GPU hours on one H100-class GPU) against
:data:`TARGETS`, with the assumptions each figure rests on in words. The GPU hours divide the
counted FLOPs by the sustained rates :data:`SUSTAINED_CONV_FLOPS`, :data:`SUSTAINED_FP32_FLOPS` and
:data:`SUSTAINED_FP64_FLOPS`: assumptions, not measurements, each explained where it is defined.
The chapters' own workloads are in :mod:`posinfo.book.workloads`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

GB = 1e9  # every figure is in decimal gigabytes (an "80 GB" H100 holds 79.6 GiB)
SUSTAINED_CONV_FLOPS = 50e12
"""FLOP/s assumed for the networks' convolutions and matrix products on one H100 (SXM, 80 GB).

The book's code runs in float32 and leaves PyTorch's defaults alone, so convolutions run on the
TF32 tensor cores (``torch.backends.cudnn.allow_tf32`` is on by default) and the dense peak is
495 TFLOP/s (378 on the PCIe card). Convolutional networks in eager PyTorch get a small share of
it: NVIDIA's own tuned ResNet-50 recipe (DeepLearningExamples, TF32, DALI loaders, batch 256)
trains 938 images/s on one A100, about 23 TFLOP/s at 24.6 GFLOP per image and step, i.e. 15% of
that card's 156 TFLOP/s TF32 peak. The book's loops are plainer (small batches, channels-last
only above 64 px, no compilation, CIFAR-size images that leave the GPU underused), so 50 TFLOP/s,
10% of the H100's TF32 peak (13% of the PCIe card's), is assumed for every network FLOP counted.
"""
SUSTAINED_FP32_FLOPS = 25e12
"""FLOP/s assumed for float32 matrix products outside the networks (the least-squares readout's
Gram matrices, ``rows.T @ rows``). TF32 is off for matrix products by default
(``torch.backends.cuda.matmul.allow_tf32`` is False), so they run on the CUDA cores, whose peak
is 67 TFLOP/s on an H100 SXM; under 40% of it is assumed."""
SUSTAINED_FP64_FLOPS = 10e12
"""FLOP/s assumed for the float64 factorisations of the least-squares readout (Cholesky and a
symmetric eigendecomposition of ``d x d`` matrices, d up to 34,561). The H100's float64 tensor
cores peak at 67 TFLOP/s; a blocked Cholesky reaches a good part of that, the eigenvalue
solver's tridiagonal reduction (memory bound) far less, so 10 TFLOP/s is assumed for both."""
BATCH_OVERHEAD_SECONDS = 5e-3
"""Seconds each batch costs beyond its FLOPs: launching a few hundred CUDA kernels from eager
PyTorch (5-10 microseconds each), the optimiser's step, copying the batch to the GPU and reading
its loss back (the chapters call ``loss.item()`` every batch, which waits for the GPU). It matters
where images are small: a training step of ResNet-18 on a batch of 128 CIFAR images is 0.4 TFLOP,
8 ms at the assumed rate."""
ALLOCATOR_FACTOR = 1.2  # GPU memory reserved per byte of live tensors (caching allocator, cuDNN workspaces)
CUDA_CONTEXT_BYTES = 1.0 * GB  # GPU memory the CUDA context and libraries take before any tensor
PROCESS_BYTES = 3.0 * GB  # host memory of the Python process (torch, CUDA, the notebook) before any data
FIGURES: tuple[str, ...] = ("gpu_gb", "ram_gb", "disk_gb", "gpu_hours")


@dataclass(frozen=True)
class Targets:
    """What one chapter may take (issue 19): GPU memory, host memory and disk in GB, GPU hours."""

    gpu_gb: float = 80.0
    ram_gb: float = 100.0
    disk_gb: float = 100.0
    gpu_hours: float = 6.0


TARGETS = Targets()


# --- measuring one network ------------------------------------------------------------------------


class LiveBytes(TorchDispatchMode):
    """Follows every tensor an operator creates (views and in-place results, which share their
    input's memory, left out) until it is freed, and keeps the peak of their bytes alive at once.

    Attributes:
        created: Bytes of every tensor created inside the mode.
        live: Bytes of those still alive.
        peak: The most bytes alive at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.created = self.live = self.peak = 0

    def _freed(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None) -> Any:
        out = func(*args, **(kwargs or {}))
        if any(r.alias_info is not None for r in func._schema.returns):
            return out  # a view or an in-place result: no new memory
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor):
                nbytes = t.numel() * t.element_size()
                self.created, self.live = self.created + nbytes, self.live + nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._freed, nbytes)
        return out


@dataclass(frozen=True)
class Footprint:
    """What a network costs per image, measured on the meta device by :func:`measure`.

    Attributes:
        flops: FLOPs of the forward pass of one image (convolutions and matrix products, two per
            multiply-add, as :class:`~torch.utils.flop_counter.FlopCounterMode` counts them).
        param_bytes: Bytes of the parameters and buffers.
        eval_bytes: The most bytes of activations alive at once in a forward pass without
            gradients, per image (the input itself not counted).
        train_flops: FLOPs of one training step (forward and backward), per image; 0 if the
            network was measured for inference only.
        train_bytes: How the peak of live tensors in a training step (forward and backward, with
            what autograd keeps for the backward pass) grows per image of the batch.
    """

    flops: float
    param_bytes: int
    eval_bytes: int
    train_flops: float = 0.0
    train_bytes: int = 0


Call = Callable[[nn.Module, Tensor], Any]


def _forward(model: nn.Module, x: Tensor) -> Any:
    return model(x)


def _loss(out: Any) -> Tensor:
    """A scalar of every floating tensor of a network's output (a tensor, list or tuple)."""
    return sum(t.float().sum() for t in tree_flatten(out)[0]
               if isinstance(t, Tensor) and t.is_floating_point())


def _eval_pass(model: nn.Module, x: Tensor, call: Call) -> tuple[float, int]:
    """FLOPs and peak live bytes of one forward pass without gradients, in eval mode."""
    model.eval()
    with torch.no_grad(), LiveBytes() as live, FlopCounterMode(display=False) as flops:
        call(model, x)
    return float(flops.get_total_flops()), live.peak


def _train_pass(model: nn.Module, x: Tensor, call: Call) -> tuple[float, int]:
    """FLOPs and peak live bytes of one training step's forward and backward pass."""
    model.train()
    for p in model.parameters():
        p.grad = None
    with LiveBytes() as live, FlopCounterMode(display=False) as flops:
        _loss(call(model, x)).backward()
    return float(flops.get_total_flops()), live.peak


def measure(model: nn.Module, input_shape: Sequence[int], *, call: Call | None = None,
            train: bool = False) -> Footprint:
    """The :class:`Footprint` of ``model`` on inputs of ``input_shape`` (one image, no batch
    dimension: ``[C, H, W]``), measured on the meta device.

    Args:
        model: The network; moved to the meta device (its weights are not needed).
        input_shape: The shape of one input.
        call: How the network is run: ``call(model, x)`` for a batch ``x`` (default ``model(x)``);
            its output is a tensor or a list or tuple of tensors.
        train: Also measure a training step (batches of 2 and 4: the growth of the peak per
            image), with the sum of the output as the loss.

    Returns:
        The footprint per image.
    """
    model, call = model.to("meta"), call or _forward
    one = torch.empty(1, *input_shape, device="meta")
    flops, eval_bytes = _eval_pass(model, one, call)
    params = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    if not train:
        return Footprint(flops, params, eval_bytes)
    (flops2, peak2), (_, peak4) = (_train_pass(model, torch.empty(b, *input_shape, device="meta"), call)
                                   for b in (2, 4))
    return Footprint(flops, params, eval_bytes, flops2 / 2, (peak4 - peak2) // 2)


def inference_gpu_bytes(fp: Footprint, batch: int, input_bytes: int) -> float:
    """GPU bytes of a forward pass without gradients on a batch: the weights, the batch's inputs
    (``input_bytes`` each) and its live activations."""
    return fp.param_bytes + batch * (input_bytes + fp.eval_bytes)


def training_gpu_bytes(fp: Footprint, batch: int, input_bytes: int, optimizer_states: int) -> float:
    """GPU bytes of a training step on a batch: the weights, their gradients (kept from one step
    to the next: the chapters clear them after the forward pass), ``optimizer_states`` copies of
    them (SGD with momentum 1, Adam 2), and the batch's inputs and activations."""
    return (2 + optimizer_states) * fp.param_bytes + batch * (input_bytes + fp.train_bytes)


# --- a run as steps -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One part of a run and what it costs.

    Attributes:
        what: What the step does, in a few words.
        conv_flops: Network FLOPs (forward passes, and forward and backward passes in training).
        fp32_flops: Float32 matrix products outside the networks (Gram matrices).
        fp64_flops: Float64 factorisations (Cholesky, eigendecompositions).
        gpu_bytes: The step's peak of GPU tensors (before :data:`ALLOCATOR_FACTOR`).
        ram_bytes: The step's peak of host memory held in data (before :data:`PROCESS_BYTES`).
        disk_bytes: What the step leaves on disk (caches).
        jobs: Separately cached pieces the step is made of (networks trained, feature sets): a
            run split into jobs can stop between two of them and resume.
        batches: Batches the step runs (forward, or forward and backward), each costing
            :data:`BATCH_OVERHEAD_SECONDS` beyond its FLOPs.
        job_share: The share of the step's work its largest job does (0: the work is split
            evenly, ``1 / jobs``).
        note: How the step was counted.
    """

    what: str
    conv_flops: float = 0.0
    fp32_flops: float = 0.0
    fp64_flops: float = 0.0
    gpu_bytes: float = 0.0
    ram_bytes: float = 0.0
    disk_bytes: float = 0.0
    jobs: int = 1
    batches: int = 0
    job_share: float = 0.0
    note: str = ""

    @property
    def gpu_hours(self) -> float:
        """Hours on one GPU at the assumed sustained rates, with every batch's overhead."""
        seconds = (self.conv_flops / SUSTAINED_CONV_FLOPS + self.fp32_flops / SUSTAINED_FP32_FLOPS
                   + self.fp64_flops / SUSTAINED_FP64_FLOPS + self.batches * BATCH_OVERHEAD_SECONDS)
        return seconds / 3600

    @property
    def largest_job_hours(self) -> float:
        """Hours of its largest job at the assumed rates."""
        return self.gpu_hours * (self.job_share or 1 / self.jobs)

    @property
    def gpu_gb(self) -> float:
        """GPU memory the step needs: its tensors, the allocator's share, the CUDA context."""
        return (ALLOCATOR_FACTOR * self.gpu_bytes + CUDA_CONTEXT_BYTES) / GB


@dataclass(frozen=True)
class Projection:
    """A chapter's run at the paper's sizes, as steps, and the four figures they add up to.

    Attributes:
        chapter: The chapter's name (``"01_existence"``).
        steps: Its steps.
        notes: What the figures do not show (paths left out, known limits of the code).
        shared_disk_bytes: Of the disk figure, what another chapter's run writes (shared caches).
    """

    chapter: str
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    shared_disk_bytes: float = 0.0
    targets: Targets = field(default=TARGETS)

    def figures(self) -> dict[str, float]:
        """``gpu_gb`` (the largest step's), ``ram_gb`` (the largest step's, plus the process),
        ``disk_gb`` (every step's caches) and ``gpu_hours`` (all steps)."""
        return {"gpu_gb": max(s.gpu_gb for s in self.steps),
                "ram_gb": (max(s.ram_bytes for s in self.steps) + PROCESS_BYTES) / GB,
                "disk_gb": sum(s.disk_bytes for s in self.steps) / GB,
                "gpu_hours": sum(s.gpu_hours for s in self.steps)}

    def fits(self) -> dict[str, bool]:
        """Whether each figure is within its target."""
        return {k: v <= getattr(self.targets, k) for k, v in self.figures().items()}

    def largest_job_hours(self) -> float:
        """GPU hours of the largest separately cached piece of work (a step's share per job)."""
        return max(s.largest_job_hours for s in self.steps)

    def fits_when_split(self) -> bool:
        """Whether jobs within the targets can do the run: memory and disk fit, and no single
        cached piece of work takes longer than the hours allowed."""
        ok = self.fits()
        return (ok["gpu_gb"] and ok["ram_gb"] and ok["disk_gb"]
                and self.largest_job_hours() <= self.targets.gpu_hours)

    def assumptions(self) -> dict[str, str]:
        """What each figure rests on, in words."""
        peak = lambda attr: max(self.steps, key=lambda s: getattr(s, attr))  # noqa: E731
        gpu, ram = peak("gpu_bytes"), peak("ram_bytes")
        flops = {k: sum(getattr(s, k) for s in self.steps) for k in ("conv_flops", "fp32_flops", "fp64_flops")}
        shared = (f", of which {self.shared_disk_bytes / GB:.1f} GB are caches an earlier chapter "
                  "wrote" if self.shared_disk_bytes else "")
        return {
            "gpu_gb": (f"largest step: {gpu.what} ({gpu.gpu_bytes / GB:.1f} GB of tensors, x"
                       f"{ALLOCATOR_FACTOR} for the allocator, + {CUDA_CONTEXT_BYTES / GB:.0f} GB "
                       "CUDA context)"),
            "ram_gb": (f"largest step: {ram.what} ({ram.ram_bytes / GB:.1f} GB of data held, + "
                       f"{PROCESS_BYTES / GB:.0f} GB for the process)"),
            "disk_gb": f"caches the run keeps (float16 features, networks); datasets not counted{shared}",
            "gpu_hours": (f"{flops['conv_flops'] / 1e15:.1f} PFLOP of network FLOPs at "
                          f"{SUSTAINED_CONV_FLOPS / 1e12:.0f} TFLOP/s"
                          + (f", {flops['fp32_flops'] / 1e15:.1f} PFLOP of float32 Gram matrices at "
                             f"{SUSTAINED_FP32_FLOPS / 1e12:.0f} TFLOP/s" if flops["fp32_flops"] else "")
                          + (f", {flops['fp64_flops'] / 1e15:.2f} PFLOP of float64 factorisations at "
                             f"{SUSTAINED_FP64_FLOPS / 1e12:.0f} TFLOP/s" if flops["fp64_flops"] else "")
                          + f", and {BATCH_OVERHEAD_SECONDS * 1e3:.0f} ms per batch for "
                          f"{sum(s.batches for s in self.steps):,} batches; data loading, "
                          "host-to-GPU copies beyond that and CPU work not counted"),
        }

    def to_json(self) -> dict[str, Any]:
        """The chapter's entry of ``paper_scale.json``: the four figures, whether they fit, the
        split, the assumptions, the steps and the notes."""
        steps = [{"what": s.what, "gpu_hours": round(s.gpu_hours, 3), "gpu_gb": round(s.gpu_gb, 1),
                  "ram_gb": round(s.ram_bytes / GB, 1), "disk_gb": round(s.disk_bytes / GB, 1),
                  "jobs": s.jobs, "note": s.note} for s in self.steps]
        return {**{k: round(v, 2) for k, v in self.figures().items()}, "fits": self.fits(),
                "fits_targets": all(self.fits().values()),
                "largest_job_gpu_hours": round(self.largest_job_hours(), 2),
                "jobs": sum(s.jobs for s in self.steps), "fits_when_split": self.fits_when_split(),
                "targets": {k: getattr(self.targets, k) for k in FIGURES},
                "throughput_tflops": {"network": SUSTAINED_CONV_FLOPS / 1e12,
                                      "fp32_gram": SUSTAINED_FP32_FLOPS / 1e12,
                                      "fp64_factorisations": SUSTAINED_FP64_FLOPS / 1e12},
                "batch_overhead_ms": BATCH_OVERHEAD_SECONDS * 1e3,
                "assumptions": self.assumptions(), "steps": steps, "notes": list(self.notes)}
