"""The position-encoding readout (PosENet) of the ICLR 2020 study, and a closed-form linear one.

PosENet maps frozen features to a one-channel position map with a few k x k convolutions
(no padding by default), BatchNorm after each, ReLU between, a sigmoid at the end; its output is
upsampled bilinearly to the ground truth and trained with a pixel-wise MSE by SGD (lr 0.1,
momentum 0.9, weight decay 1e-4, batch 32, 15 epochs, lr x 0.1 at epoch 10). Applied to the raw
image instead of features it is "PosENet alone".

:func:`least_squares_readout` solves the single linear k x k layer in closed form (normal
equations with a ridge chosen on held-out images): what a linear readout can find in the
features, free of SGD's initialisation and step count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
    """One linear k x k convolution, no sigmoid: the model :func:`least_squares_readout` fits.

    Attributes:
        ridge: The ridge the fit used, relative to the mean variance of the features' patches
            (``nan`` when it was not fitted by :func:`least_squares_readout`).
        condition: The condition number of the regularised normal equations that were solved.
    """

    def __init__(self, conv: nn.Conv2d, ridge: float = float("nan"),
                 condition: float = float("nan")) -> None:
        super().__init__()
        self.conv = conv
        self.ridge, self.condition = ridge, condition

    def forward(self, x: Tensor, out_size: int) -> Tensor:
        """Features ``[B, C, h, w]`` to maps ``[B, out_size, out_size]``."""
        y = self.conv(x)
        return F.interpolate(y, size=(out_size, out_size), mode="bilinear", align_corners=False)[:, 0]


# The ridges :func:`least_squares_readout` chooses from, relative to the mean variance of the
# features' patches, in factors of 10: from nearly none (the exact fit on well-conditioned
# features) to 100 times the features' own variance (random ResNet-18 features chose 1, then the
# largest ridge tried, when the range ended there). Every HOLDOUT_EVERY-th image is held out.
RIDGES: tuple[float, ...] = tuple(10.0**k for k in range(-6, 3))
HOLDOUT_EVERY = 5


@dataclass
class NormalEquations:
    """The sufficient statistics of a least-squares fit of ``P`` targets on rows of ``d``
    values (the last one a constant 1): ``gram`` ``[d, d]`` = X'X and ``rhs`` ``[d, P]`` = X'Y,
    float64. Rows should be roughly centred already (:class:`Patches` subtracts an offset):
    :meth:`centred` removes the exact mean by subtraction, which loses the digits of any
    feature whose mean is large against its spread."""

    gram: Tensor
    rhs: Tensor

    @classmethod
    def zeros(cls, d: int, targets: int, device: torch.device | str = "cpu") -> NormalEquations:
        """Empty statistics for rows of ``d`` values and ``targets`` targets, on ``device``."""
        return cls(torch.zeros(d, d, dtype=torch.float64, device=device),
                   torch.zeros(d, targets, dtype=torch.float64, device=device))

    def add(self, rows: Tensor, y: Tensor) -> None:
        """Accumulate rows ``[M, d]`` (float32 products, float64 sums) with targets ``[M, P]``,
        both on the statistics' device."""
        self.gram += (rows.T @ rows).double()
        self.rhs += (rows.T @ y).double()

    def centred(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The rows' scatter about their mean ``[d-1, d-1]``, their cross products with the
        centred targets ``[d-1, P]``, and the means of rows ``[d-1]`` and targets ``[P]``;
        centring keeps the ridge off the intercept."""
        n = self.gram[-1, -1]
        mean_x, mean_y = self.gram[:-1, -1] / n, self.rhs[-1] / n
        scatter = self.gram[:-1, :-1].clone().addr_(mean_x, mean_x, alpha=-float(n))  # one copy
        return scatter, self.rhs[:-1] - n * torch.outer(mean_x, mean_y), mean_x, mean_y

    def solve(self, ridge: float) -> Tensor | None:
        """Weights ``[d, P]`` (intercept last) of the fit with ``ridge`` times the mean diagonal
        of the scatter added to it, or ``None`` where that system is not positive definite.
        Constant rows (a zero scatter) give the targets' means."""
        scatter, cross, mean_x, mean_y = self.centred()
        scatter.diagonal().add_(ridge * _scale(scatter))
        factor, info = torch.linalg.cholesky_ex(scatter)
        del scatter  # cholesky_solve copies the factor: three d x d matrices at most, not four
        if info:
            return None
        w = torch.cholesky_solve(cross, factor)
        return torch.cat([w, (mean_y - mean_x @ w)[None]])

    def conditions(self, ridges: Sequence[float]) -> list[float]:
        """The condition numbers of the systems :meth:`solve` solves for ``ridges`` (one
        eigendecomposition of the scatter serves them all)."""
        scatter = self.centred()[0]
        eig = torch.linalg.eigvalsh(scatter)
        shifts = [r * _scale(scatter) for r in ridges]
        return [float((eig[-1] + s) / (eig[0].clamp(min=0) + s)) for s in shifts]


def _scale(scatter: Tensor) -> Tensor:
    """The unit of the ridge: the scatter's mean diagonal (the tiniest float if it is 0)."""
    return scatter.diagonal().mean().clamp(min=torch.finfo(torch.float64).tiny)


@dataclass(frozen=True)
class Patches:
    """How features become least-squares rows: every ``k x k`` patch (``padding`` zeros around)
    minus ``offset`` ``[C k^2]``, then a constant 1. The offset, the mean patch of the first
    images, keeps float32 products of large-mean features from losing their digits."""

    kernel_size: int
    padding: int
    offset: Tensor

    @classmethod
    def of(cls, features: Tensor, kernel_size: int, padding: int, images: int = 32,
           device: torch.device | str = "cpu") -> Patches:
        """The rows of ``features`` ``[N, C, h, w]``, offset by the mean patch of the first
        ``images``, made on ``device``."""
        first = _unfold(features[:images].to(device), kernel_size, padding)
        return cls(kernel_size, padding, first.double().mean(0).float())

    def __call__(self, x: Tensor) -> Tensor:
        """``[B, C, h, w]`` (on the offset's device) to rows ``[B * L, C * k * k + 1]``."""
        cols = _unfold(x, self.kernel_size, self.padding) - self.offset
        return torch.cat([cols, cols.new_ones(len(cols), 1)], dim=1)


def _unfold(x: Tensor, kernel_size: int, padding: int) -> Tensor:
    """``[B, C, h, w]`` to patches ``[B * L, C * k * k]`` (float32)."""
    return F.unfold(x.float(), kernel_size, padding=padding).transpose(1, 2).flatten(0, 1)


def held_out(n: int) -> Tensor:
    """``[n]`` bool: the images held out to choose the ridge, every ``HOLDOUT_EVERY``-th one
    (the last one when there are fewer)."""
    if n < 2:
        raise ValueError(f"least squares needs at least 2 images to choose its ridge; got {n}")
    mask = torch.arange(n) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
    mask[-1] |= not mask.any()
    return mask


def _chunks(features: Tensor, select: Tensor, batch_size: int, device: torch.device,
            desc: str | None = None) -> Iterator[Tensor]:
    """The selected images ``select`` ``[N]`` of ``features``, ``batch_size`` at a time, moved
    to ``device`` (with a progress bar when ``desc`` is given)."""
    index = select.nonzero().flatten()
    for idx in tqdm(index.split(batch_size), desc=desc, disable=desc is None, leave=False):
        yield features[idx].to(device)


def _normal_equations(features: Tensor, y: Tensor, rows: Patches, select: Tensor,
                      batch_size: int, progress: bool, into: NormalEquations | None = None
                      ) -> NormalEquations:
    """The statistics of the selected images ``select`` ``[N]`` of ``features`` ``[N, C, h, w]``
    with targets ``y`` ``[L, P]`` on the readout's grid (``L`` cells per image), on ``y``'s
    device, added into ``into`` in place when it is given."""
    stats = into if into is not None else NormalEquations.zeros(rows.offset.numel() + 1,
                                                                y.shape[1], y.device)
    for chunk in _chunks(features, select, batch_size, y.device,
                         "least squares" if progress else None):
        stats.add(rows(chunk), y.repeat(len(chunk), 1))
    return stats


def held_out_errors(features: Tensor, y: Tensor, rows: Patches, select: Tensor,
                    weights: Tensor, batch_size: int) -> Tensor:
    """The summed squared errors ``[R, P]`` of weights ``[R, d, P]`` (one fit per ridge) on the
    selected images, from their residuals (a difference of quadratic forms would cancel)."""
    r, d, p = weights.shape
    flat = weights.permute(1, 0, 2).reshape(d, r * p).float()
    errors = torch.zeros(r * p, dtype=torch.float64, device=y.device)
    for chunk in _chunks(features, select, batch_size, y.device):
        residual = rows(chunk) @ flat - y.repeat(len(chunk), r)
        errors += (residual.double() ** 2).sum(0)
    return errors.view(r, p)


def choose_ridges(fit: NormalEquations, errors_of: Callable[[Tensor], Tensor],
                  ridges: Sequence[float] = RIDGES) -> list[float]:
    """For each target, the ridge of ``ridges`` whose fit on ``fit`` has the lowest held-out
    error (``errors_of``: weights ``[R, d, P]`` to errors ``[R, P]``), the smallest such ridge
    on ties; ridges whose system is not positive definite are skipped.

    Raises:
        ValueError: If no ridge gives a positive definite system.
    """
    solutions = [fit.solve(ridge) for ridge in ridges]
    solvable = [i for i, w in enumerate(solutions) if w is not None]
    if not solvable:
        raise ValueError("no ridge makes the normal equations positive definite")
    errors = errors_of(torch.stack([solutions[i] for i in solvable]))  # [R', P]
    return [ridges[solvable[i]] for i in errors.argmin(0).tolist()]


@torch.no_grad()
def least_squares_readout(features: Tensor, targets: Tensor, kernel_size: int = 3, padding: int = 0,
                          *, ridges: Sequence[float] = RIDGES, batch_size: int = 32,
                          name: str = "the features", progress: bool = False,
                          device: torch.device | str = "cpu") -> list[LinearReadout]:
    """The least-squares linear k x k readout for each target map, its ridge chosen on
    held-out images.

    The readout's output grid (``h - k + 1 + 2 * padding`` per side) is compared with the target
    resized bilinearly to that grid, so the fit minimises the MSE where the readout's values
    live; predictions are then upsampled like PosENet's. Features are centred (the intercept is
    not penalised). Each target's ridge is the one of ``ridges`` (relative to the patches' mean
    variance) that predicts the :func:`held_out` images best from the others; the readout is
    then refitted on all images. The features of wide encoders are strongly collinear, so a
    nearly unregularised fit is ill-conditioned and its solution can change with the order of
    floating-point sums (the thread count); the chosen ridge and the condition number of the
    solved system are kept on each readout (:class:`LinearReadout`).

    Cost, with ``d = C k^2 + 1``: one ``d x d`` float64 matrix of statistics (the held-out
    images' are added into it in place before the refit) and, while solving, a centred copy
    (freed once factorised), the Cholesky factor and the copy of it ``cholesky_solve`` makes, so
    about ``3 d^2 x 8`` bytes at the peak on ``device`` (ResNet-152's
    four levels with a 3 x 3 kernel, d = 34,561: about 29 GB); one Cholesky factorisation per
    ridge tried and per ridge chosen, one symmetric eigendecomposition for the condition
    numbers, and two passes over the held-out images. Features stay where they are and go to
    ``device`` one chunk at a time; the products are float32 there, summed in float64.

    Args:
        features: ``[N, C, h, w]``, ``N >= 2``.
        targets: ``[P, T, T]``: one map per pattern.
        kernel_size: Side of the kernel.
        padding: Zero padding.
        ridges: The relative ridges to choose from.
        batch_size: Images per chunk of the accumulation.
        name: What the features are called in errors.
        progress: Show a progress bar.
        device: Where the statistics are accumulated and solved (a GPU's float64 is fast).

    Returns:
        One :class:`LinearReadout` per target, on the CPU.

    Raises:
        ValueError: If there are fewer than 2 images, the features or the solution hold NaN or
            inf, or no ridge gives a solvable system (naming ``name``).
    """
    if not torch.isfinite(features).all():
        raise ValueError(f"least squares on {name}: the features hold NaN or inf")
    grid = features.shape[-1] - kernel_size + 1 + 2 * padding
    y = F.interpolate(targets[:, None].double(), size=(grid, grid), mode="bilinear",
                      align_corners=False).flatten(1).T.float().to(device)  # [L, P]
    rows = Patches.of(features, kernel_size, padding, batch_size, device)
    held = held_out(len(features))
    fit = _normal_equations(features, y, rows, ~held, batch_size, progress)
    errors_of = lambda w: held_out_errors(features, y, rows, held, w, batch_size)  # noqa: E731
    try:
        chosen = choose_ridges(fit, errors_of, ridges)
    except ValueError as err:
        raise ValueError(f"least squares on {name}: {err}") from None
    _normal_equations(features, y, rows, held, batch_size, progress=False, into=fit)
    return _refit(fit, chosen, rows, features.shape[1], name)


def _refit(stats: NormalEquations, chosen: list[float], rows: Patches, channels: int,
           name: str) -> list[LinearReadout]:
    """One readout per target, fitted on ``stats`` with its chosen ridge (one solve per ridge)."""
    solutions = {r: stats.solve(r) for r in sorted(set(chosen))}
    conditions = dict(zip(solutions, stats.conditions(list(solutions))))
    out = []
    for target, ridge in enumerate(chosen):
        w = solutions[ridge]
        if w is None or not torch.isfinite(w[:, target]).all():
            raise ValueError(f"least squares on {name}: the solution holds NaN or inf (the "
                             "normal equations are singular or overflow)")
        out.append(_as_conv(w[:, target], rows, channels, ridge, conditions[ridge]))
    return out


def _as_conv(w: Tensor, rows: Patches, channels: int, ridge: float,
             condition: float) -> LinearReadout:
    """The readout of weights ``[d]`` (intercept last) fitted on ``rows``: the offset the rows
    subtracted moves into the bias, so the convolution reads the features as they are."""
    k = rows.kernel_size
    conv = nn.Conv2d(channels, 1, k, padding=rows.padding)
    weight = w[:-1].float()
    conv.weight.data = weight.view(1, channels, k, k).cpu().clone()
    conv.bias.data = (w[-1:].double() - rows.offset.double() @ w[:-1].double()).float().cpu()
    return LinearReadout(conv, ridge, condition).eval()
