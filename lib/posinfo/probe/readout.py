"""The position-encoding readout (PosENet) of the ICLR 2020 study, and an exact linear bound.

PosENet maps frozen features to a one-channel position map with a few k x k convolutions
(no padding by default), BatchNorm after each, ReLU between, a sigmoid at the end; its output is
upsampled bilinearly to the ground truth and trained with a pixel-wise MSE by SGD (lr 0.1,
momentum 0.9, weight decay 1e-4, batch 32, 15 epochs, lr x 0.1 at epoch 10). Applied to the raw
image instead of features it is "PosENet alone".

:func:`least_squares_readout` solves the single linear k x k layer exactly (ridge-stabilised
normal equations), which bounds what any one-layer linear readout can fit on the training set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm


# Features up to this size in float32 are converted (and moved to the device) once per readout;
# larger ones batch by batch, so memory stays bounded for the paper profile's feature sets.
RESIDENT_BYTES = 2 * 1024**3


class PosENet(nn.Module):
    """A stack of convolutions from features to one position map.

    Args:
        in_channels: Channels of the input features (3 for the raw image).
        n_layers: Number of convolutions; intermediate ones keep ``in_channels`` channels.
        kernel_size: Side of every kernel.
        padding: Zero padding of every convolution (0 in the paper).
        hidden_channels: Width of the intermediate layers (``None``: ``in_channels``, as in the
            paper; fewer make deep readouts on wide features affordable on a CPU).
        padding_mode: torch's ``zeros``, ``reflect``, ``replicate`` or ``circular``.
    """

    def __init__(self, in_channels: int, n_layers: int = 1, kernel_size: int = 3,
                 padding: int = 0, hidden_channels: int | None = None,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        if n_layers < 1 or kernel_size < 1 or padding < 0:
            raise ValueError("need n_layers >= 1, kernel_size >= 1 and padding >= 0")
        hidden = in_channels if hidden_channels is None else min(hidden_channels, in_channels)
        layers: list[nn.Module] = []
        width = in_channels
        for i in range(n_layers):
            last = i == n_layers - 1
            conv = nn.Conv2d(width, 1 if last else hidden, kernel_size, padding=padding,
                             padding_mode=padding_mode)
            width = hidden
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.BatchNorm2d(conv.out_channels)] + ([] if last else [nn.ReLU()])
        self.body = nn.Sequential(*layers)

    def grid_maps(self, x: Tensor) -> Tensor:
        """Features ``[B, C, h, w]`` to maps ``[B, h', w']`` in (0, 1) on the readout's own grid."""
        return torch.sigmoid(self.body(x))[:, 0]

    def forward(self, x: Tensor, out_size: int) -> Tensor:
        """Features ``[B, C, h, w]`` to position maps ``[B, out_size, out_size]`` in (0, 1)."""
        y = self.grid_maps(x)[:, None]
        return F.interpolate(y, size=(out_size, out_size), mode="bilinear", align_corners=False)[:, 0]


def upsampling_matrix(grid: int, size: int) -> Tensor:
    """``[size, grid]``: bilinear upsampling (``align_corners=False``) along one axis as a matrix,
    so that ``interpolate(y) == U_rows @ y @ U_cols.T`` for a map ``y`` (bilinear interpolation
    is separable and linear)."""
    eye = torch.eye(grid, dtype=torch.float64)[:, None]  # [grid, 1, grid]: one basis vector each
    return F.interpolate(eye, size=size, mode="linear", align_corners=False)[:, 0].T


class UpsampledMSE:
    """The mean squared error between maps ``y`` ``[B, g, h]`` upsampled bilinearly to the
    target's ``[T, S]`` and the target, without upsampling: with ``R``, ``C`` the
    :func:`upsampling_matrix` of rows and columns, ``|R y C' - t|^2 = <y, (R'R) y (C'C)> -
    2 <y, R' t C> + |t|^2``. The
    same value and gradient as ``mse_loss(interpolate(y), t)`` (up to rounding), at a cost that
    does not grow with ``T``: the paper's readout upsamples a 12 x 12 map to 196 x 196 at every
    step.
    """

    def __init__(self, target: Tensor, grid: tuple[int, int]) -> None:
        """``target``: ``[T, S]``; ``grid``: the readout's output ``(g, h)`` before upsampling."""
        rows, cols = (upsampling_matrix(g, n) for g, n in zip(grid, target.shape[-2:]))
        t = target.double().cpu()
        self.gram_rows, self.gram_cols = (rows.T @ rows).float(), (cols.T @ cols).float()
        self.cross = (rows.T @ t @ cols).float()  # [g, g]
        self.norm = float((t * t).sum())
        self.pixels = target.numel()

    def __call__(self, y: Tensor) -> Tensor:
        """The loss (a scalar) of maps ``[B, g, h]``."""
        a, b, cross = (m.to(y.device) for m in (self.gram_rows, self.gram_cols, self.cross))
        quadratic = (y * (a @ y @ b)).sum() - 2 * (y * cross).sum()
        return (quadratic + len(y) * self.norm) / (len(y) * self.pixels)


@dataclass(frozen=True)
class ReadoutTraining:
    """The readout's training protocol (defaults: the ICLR 2020 authors')."""

    n_layers: int = 1
    kernel_size: int = 3
    padding: int = 0
    hidden_channels: int | None = None
    padding_mode: str = "zeros"
    epochs: int = 15
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 32
    lr_drop_epoch: int = 10


def fit_readout(inputs: Tensor, target: Tensor, protocol: ReadoutTraining = ReadoutTraining(), *,
                seed: int = 0, device: torch.device | str = "cpu",
                transform: Callable[[Tensor], Tensor] | None = None,
                progress: bool = False) -> PosENet:
    """Train one PosENet to output ``target`` from every input.

    Args:
        inputs: Cached features ``[N, C, h, w]`` (any float dtype), or images when ``transform``
            is given.
        target: The ground-truth map ``[T, T]``, the same for every input.
        protocol: Architecture and optimiser settings.
        seed: Seeds the initialisation and the order of the mini-batches.
        device: Where training runs.
        transform: Optional function applied to every mini-batch before the readout (e.g. a
            frozen encoder run at every step, the paper's own protocol).
        progress: Show a progress bar over epochs.

    Returns:
        The trained readout, in eval mode, on ``device``.
    """
    gen = torch.Generator().manual_seed(seed)
    prepare = transform or (lambda b: b)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        channels = prepare(inputs[:1].to(device).float()).shape[1]
        model = PosENet(channels, protocol.n_layers, protocol.kernel_size, protocol.padding,
                        protocol.hidden_channels, protocol.padding_mode).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                          weight_decay=protocol.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [protocol.lr_drop_epoch], gamma=0.1)
    target = target.to(device)
    if transform is None and inputs.numel() * 4 <= RESIDENT_BYTES:
        inputs = inputs.to(device).float()  # once, not at every step (the same values)
    model.train()
    loss_of: UpsampledMSE | None = None
    for _ in tqdm(range(protocol.epochs), desc="readout", disable=not progress, leave=False):
        for idx in torch.randperm(len(inputs), generator=gen).split(protocol.batch_size):
            x = prepare(inputs[idx].to(device).float())
            y = model.grid_maps(x)
            loss_of = loss_of or UpsampledMSE(target, tuple(y.shape[-2:]))
            loss = loss_of(y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def readout_seeds(seed: int, count: int) -> list[int]:
    """The ``count`` readout seeds of a run with ``seed``: ``seed`` itself first, so that one seed
    reproduces a single readout, then ``seed + 1000 k``."""
    return [seed + 1000 * k for k in range(count)]


@torch.no_grad()
def training_loss(model: nn.Module, inputs: Tensor, target: Tensor, *,
                  device: torch.device | str = "cpu") -> float:
    """The readout's mean squared error against ``target`` ``[T, T]`` over inputs ``[N, C, h, w]``."""
    pred = predict(model, inputs, target.shape[-1], device=device)
    return float(F.mse_loss(pred, target.expand_as(pred).to(pred.dtype)))


def fit_best_readout(inputs: Tensor, target: Tensor, protocol: ReadoutTraining = ReadoutTraining(),
                     *, seeds: Sequence[int] = (0,), device: torch.device | str = "cpu"
                     ) -> tuple[PosENet, float]:
    """One readout per seed (:func:`fit_readout`), and the one with the lowest training loss:
    SGD from one initialisation can stall far above what the features allow, and the training
    loss, not the test score, picks the run.

    Args:
        inputs: Features ``[N, C, h, w]``.
        target: The map ``[T, T]`` every input should give.
        protocol: The readout and its training.
        seeds: One readout is trained per seed (:func:`readout_seeds`).
        device: Where training runs.

    Returns:
        The chosen readout and its training loss.
    """
    if not seeds:
        raise ValueError("fit_best_readout needs at least one seed")
    fits = [fit_readout(inputs, target, protocol, seed=s, device=device) for s in seeds]
    losses = [training_loss(m, inputs, target, device=device) for m in fits]
    best = min(range(len(fits)), key=losses.__getitem__)
    return fits[best], losses[best]


@torch.no_grad()
def predict(model: nn.Module, inputs: Tensor, out_size: int, *, batch_size: int = 64,
            device: torch.device | str = "cpu") -> Tensor:
    """Position maps ``[N, out_size, out_size]`` (float32, CPU) of a readout on ``[N, C, h, w]``."""
    model = model.to(device).eval()
    return torch.cat([model(b.to(device).float(), out_size).cpu() for b in inputs.split(batch_size)])


class LinearReadout(nn.Module):
    """One linear k x k convolution, no sigmoid: the model :func:`least_squares_readout` fits."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor, out_size: int) -> Tensor:
        """Features ``[B, C, h, w]`` to maps ``[B, out_size, out_size]``."""
        y = self.conv(x)
        return F.interpolate(y, size=(out_size, out_size), mode="bilinear", align_corners=False)[:, 0]


def _patches(x: Tensor, kernel_size: int, padding: int) -> Tensor:
    """``[B, C, h, w]`` to rows ``[B * L, C * k * k + 1]`` (patches and a constant 1)."""
    cols = F.unfold(x.float(), kernel_size, padding=padding).transpose(1, 2).flatten(0, 1)
    return torch.cat([cols, torch.ones(len(cols), 1)], dim=1)


@torch.no_grad()
def least_squares_readout(features: Tensor, targets: Tensor, kernel_size: int = 3, padding: int = 0,
                          *, ridge: float = 1e-6, batch_size: int = 32, name: str = "the features",
                          progress: bool = False) -> list[LinearReadout]:
    """The exact least-squares linear k x k readout for each target map.

    The readout's output grid (``h - k + 1 + 2 * padding`` per side) is compared with the target
    resized bilinearly to that grid, so the fit minimises the MSE where the readout's values
    live; predictions are then upsampled like PosENet's. One Gram matrix serves every target.

    Args:
        features: ``[N, C, h, w]``.
        targets: ``[P, T, T]``: one map per pattern.
        kernel_size: Side of the kernel.
        padding: Zero padding.
        ridge: Added to the Gram's diagonal, relative to its mean diagonal, for stability.
        batch_size: Images per chunk of the Gram accumulation.
        name: What the features are called in errors.
        progress: Show a progress bar.

    Returns:
        One :class:`LinearReadout` per target.

    Raises:
        ValueError: If the features or the solution hold NaN or inf (naming ``name``).
    """
    if not torch.isfinite(features).all():
        raise ValueError(f"least squares on {name}: the features hold NaN or inf")
    n, c, h, _ = features.shape
    grid = h - kernel_size + 1 + 2 * padding
    y = F.interpolate(targets[:, None].double(), size=(grid, grid), mode="bilinear",
                      align_corners=False).flatten(1).T  # [L, P]
    d = c * kernel_size**2 + 1
    gram, rhs = torch.zeros(d, d, dtype=torch.float64), torch.zeros(d, len(targets), dtype=torch.float64)
    y = y.float()  # the products run in float32 like the Gram's; the sums accumulate in float64
    for chunk in tqdm(features.split(batch_size), desc="least squares", disable=not progress,
                      leave=False):
        rows = _patches(chunk, kernel_size, padding)
        gram += (rows.T @ rows).double()
        rhs += (rows.T @ y.repeat(len(chunk), 1)).double()
    gram.diagonal().add_(ridge * gram.diagonal().mean())
    solution = torch.linalg.solve(gram, rhs).float()  # [d, P]
    if not torch.isfinite(solution).all():
        raise ValueError(f"least squares on {name}: the solution holds NaN or inf (the normal "
                         "equations are singular or overflow)")
    return [_as_conv(w, c, kernel_size, padding) for w in solution.T]


def _as_conv(w: Tensor, channels: int, kernel_size: int, padding: int) -> LinearReadout:
    conv = nn.Conv2d(channels, 1, kernel_size, padding=padding)
    conv.weight.data = w[:-1].view(1, channels, kernel_size, kernel_size).clone()
    conv.bias.data = w[-1:].clone()
    return LinearReadout(conv).eval()
