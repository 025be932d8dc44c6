"""Training of the autoencoder pair: L = <R1> + <R2> + λ·DisCo²(R1, R2) [+ λ_c·closure] on background.

The optional closure term (``closure_lam`` > 0) is the ABCD non-closure penalty of
ABCDisCoTEC (:func:`offline.ad.closure.closure_penalty`).

One loop serves one CPU, one GPU, or many processes under ``torchrun``:

- ``batch_size`` is the *global* batch. Each epoch draws one permutation from
  ``seed + epoch`` (the same on every rank); global batch b is the slice
  ``[b*B, (b+1)*B)`` of it and rank r takes the r-th of its ``world_size`` equal
  parts, so one process with batch B sees exactly the batches that W processes
  see together. The last incomplete batch of an epoch is dropped.
- DisCo is not a sum over events, so it cannot be averaged over ranks. Each rank
  gathers R1, R2 and the weights of the whole global batch with an autograd-aware
  all_gather (:func:`offline.distributed.all_gather_with_grad`) and computes the
  loss of the global batch; the weighted means use the global weight sum. The
  gather's backward sums gradients over ranks (× world size) and DDP averages
  them (÷ world size), so the update equals the single-process update on the
  same global batch (up to float summation order).
- On CUDA the forward pass runs under bfloat16 autocast (``amp``); DisCo, whose
  N×N matrices lose too much in half precision, is always float32.

Checkpoints (rank 0 writes, atomically): ``config.json`` (architecture + training
config), ``model.safetensors`` (best validation loss), ``last.safetensors`` (last
epoch, with the Adam state as ``optim.*`` tensors) and ``state.json`` (epoch,
history, early-stopping counters), so ``resume=True`` continues an interrupted
run exactly where it stopped. ``metrics.json`` and ``loss.png`` are written at the end.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from offline import distributed
from offline.ad.closure import closure_penalty, jittered_efficiencies
from offline.ad.data import ArraySource, BatchSource, chunk_order, load_chunks
from offline.ad.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CLOSURE_EFFICIENCIES,
    DEFAULT_CLOSURE_JITTER,
    DEFAULT_CLOSURE_LAM,
    DEFAULT_DEVICE,
    DEFAULT_EPOCHS,
    DEFAULT_LAMBDA,
    DEFAULT_LR,
    DEFAULT_MONITOR,
    DEFAULT_PATIENCE,
    DEFAULT_PRESET,
    Monitor,
)
from offline.ad.disco import disco_sq
from offline.ad.model import AEConfig, AutoencoderPair, preset
from offline.artifacts import (
    atomic_path,
    deferred_interrupts,
    load_tensors,
    read_json,
    read_json_object,
    write_json,
)

# validation events per batch on which DisCo² is watched when it is not trained (lam = 0)
DISCO_WATCH_EVENTS = 10_000
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
BEST_FILE = "model.safetensors"
LAST_FILE = "last.safetensors"
STATE_FILE = "state.json"
EPOCH_TENSOR = (
    "checkpoint.epoch"  # in LAST_FILE: the epoch its weights end, checked against STATE_FILE
)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; ``batch_size`` is the global batch (all ranks together)."""

    preset: str = DEFAULT_PRESET
    lam: float = DEFAULT_LAMBDA
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    lr: float = DEFAULT_LR
    patience: int = DEFAULT_PATIENCE
    min_delta: float = 0.0
    monitor: str = DEFAULT_MONITOR  # validation figure of early stopping and the best checkpoint
    seed: int = 1234
    device: str = DEFAULT_DEVICE
    amp: bool | None = None  # None: on for CUDA, off on CPU
    progress: bool = True
    # 0: each epoch is one random permutation of all events (in memory). > 0: events are visited in
    # contiguous chunks of this many, chunk order shuffled, events shuffled within groups of
    # shuffle_group chunks (offline.ad.data.chunk_order); needed to stream from files.
    shuffle_chunk: int = 0
    shuffle_group: int = 8
    closure_lam: float = DEFAULT_CLOSURE_LAM  # weight of the ABCD non-closure penalty
    # per-axis background efficiencies of the penalty's cuts (offline.ad.closure)
    closure_efficiencies: tuple[float, ...] = DEFAULT_CLOSURE_EFFICIENCIES
    # > 0: each step moves each axis's grid by a factor exp(±closure_jitter) (seeded), so that
    # closure holds between the grid points too (offline.ad.closure.jittered_efficiencies)
    closure_jitter: float = DEFAULT_CLOSURE_JITTER

    def __post_init__(self) -> None:
        # JSON gives lists: keep one (hashable, comparable) form
        object.__setattr__(self, "closure_efficiencies", tuple(self.closure_efficiencies))
        if not self.closure_efficiencies or not all(
            isinstance(e, int | float) and 0 < e < 1 for e in self.closure_efficiencies
        ):
            raise ValueError(
                f"closure_efficiencies must be numbers in (0, 1), got {self.closure_efficiencies}"
            )
        if self.lam < 0 or not math.isfinite(self.lam):
            raise ValueError(f"lambda must be a finite number >= 0, got {self.lam}")
        if self.closure_jitter < 0 or not math.isfinite(self.closure_jitter):
            raise ValueError(
                f"closure_jitter must be a finite number >= 0, got {self.closure_jitter}"
            )
        if self.closure_lam < 0 or not math.isfinite(self.closure_lam):
            raise ValueError(f"closure_lam must be a finite number >= 0, got {self.closure_lam}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be >= 2 (DisCo needs pairs of events), got {self.batch_size}"
            )
        if not self.lr > 0:
            raise ValueError(f"learning rate must be > 0, got {self.lr}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.monitor not in tuple(Monitor):
            raise ValueError(f"monitor must be one of {', '.join(Monitor)}, got {self.monitor!r}")
        if self.shuffle_chunk < 0 or self.shuffle_group < 1:
            raise ValueError(
                f"shuffle_chunk must be >= 0 and shuffle_group >= 1, got {self.shuffle_chunk} and "
                f"{self.shuffle_group}"
            )
        preset(self.preset)  # raises on unknown names

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["closure_efficiencies"] = list(self.closure_efficiencies)  # as JSON gives it back
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        if not isinstance(data, dict):
            raise ValueError(f"training settings must be an object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        for key, value in data.items():
            default = known[key].default
            kinds = {
                bool: (bool,),
                int: (int,),
                float: (int, float),
                str: (str,),
                tuple: (list, tuple),
            }.get(type(default), (bool,))
            if (default is None and value is None) or (
                isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))
            ):
                continue
            raise ValueError(
                f"training setting {key!r} has the wrong type ({type(value).__name__}): {value!r}"
            )
        return cls(**data)


@dataclass
class LossParts:
    """The loss and its parts (detached floats for logging)."""

    total: torch.Tensor
    r1: float
    r2: float
    disco: float
    closure: float = 0.0


def pair_loss(
    r1: torch.Tensor,
    r2: torch.Tensor,
    weights: torch.Tensor,
    lam: float,
    closure_lam: float = 0.0,
    closure_efficiencies: Sequence[float] = DEFAULT_CLOSURE_EFFICIENCIES,
    closure_efficiencies_r2: Sequence[float] | None = None,
) -> LossParts:
    """L = <R1>_w + <R2>_w + λ·DisCo²(R1, R2) + λ_c·closure on the global batch (see module docstring for DDP).

    The closure term (:func:`offline.ad.closure.closure_penalty`) is computed only when
    ``closure_lam`` > 0. The quantization-aware training in ``quantize`` uses this same function.
    """
    r1 = distributed.all_gather_with_grad(r1.float())
    r2 = distributed.all_gather_with_grad(r2.float())
    w = distributed.all_gather_with_grad(weights.float())
    wsum = w.sum()
    m1 = (w * r1).sum() / wsum
    m2 = (w * r2).sum() / wsum
    total = m1 + m2
    d = disco_sq(r1, r2, w) if lam > 0 else torch.zeros((), device=r1.device)
    total = total + lam * d
    c = (
        closure_penalty(r1, r2, w, closure_efficiencies, efficiencies_r2=closure_efficiencies_r2)
        if closure_lam > 0
        else torch.zeros((), device=r1.device)
    )
    total = total + closure_lam * c
    # No rescaling under DDP: the gather's backward sums the (identical) gradients of all
    # ranks (x world size) and DDP's averaging divides by world size again.
    return LossParts(
        total, float(m1.detach()), float(m2.detach()), float(d.detach()), float(c.detach())
    )


@dataclass
class TrainResult:
    """What :func:`fit` produced; ``best_val_loss`` is the best validation figure that
    ``TrainConfig.monitor`` names (the loss, or the reconstruction alone)."""

    out_dir: Path
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    events_per_second: float = 0.0


def save_config(
    out_dir: Path, architecture: AEConfig, config: TrainConfig, extra: dict[str, Any] | None = None
) -> None:
    write_json(
        out_dir / CONFIG_FILE,
        {
            "format_version": FORMAT_VERSION,
            "architecture": architecture.to_dict(),
            "train": config.to_dict(),
            **(extra or {}),
        },
    )


def load_config(path: str | Path) -> tuple[AEConfig, TrainConfig, dict[str, Any]]:
    """Architecture and training config of a checkpoint directory (or its config.json)."""
    path = Path(path)
    file = path / CONFIG_FILE if path.is_dir() else path
    data = read_json_object(file, "checkpoint config")
    try:
        if data["format_version"] != FORMAT_VERSION:
            raise ValueError(
                f"{file}: format_version {data['format_version']!r} is not {FORMAT_VERSION}"
            )
        return AEConfig.from_dict(data["architecture"]), TrainConfig.from_dict(data["train"]), data
    except KeyError as err:
        raise ValueError(f"{file}: missing field {err}") from None
    except ValueError as err:
        raise ValueError(f"{file}: {err}") from None


def load_pair(path: str | Path, which: str = BEST_FILE) -> AutoencoderPair:
    """The trained pair of a checkpoint directory (safetensors weights, no pickle)."""
    path = Path(path)
    arch, _, _ = load_config(path)
    weights = path / which
    model = AutoencoderPair(arch)
    # refuses a truncated or foreign file and NaN/inf weights (they would score every event NaN)
    state = {
        k: v
        for k, v in load_tensors(weights, "checkpoint weights").items()
        if not k.startswith("optim.") and k != EPOCH_TENSOR
    }
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        detail = " ".join(str(err).split())  # load_state_dict's report spans lines
        raise ValueError(
            f"{weights}: weights do not match the architecture in {CONFIG_FILE}: {detail}"
        ) from None
    return model.eval()


def _save_weights(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    epoch: int | None = None,
) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if epoch is not None:
        tensors[EPOCH_TENSOR] = torch.tensor(epoch)
    if optimizer is not None:
        for idx, st in optimizer.state_dict()["state"].items():
            for name, value in st.items():
                tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def _restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _batches(
    n: int, batch: int, epoch: int, seed: int, rank: int, world: int
) -> Iterator[torch.Tensor]:
    """Index tensors of this rank's share of each global batch (see module docstring)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=gen)
    local = batch // world
    for b in range(n // batch):
        start = b * batch + rank * local
        yield perm[start : start + local]


def _chunked_batches(
    source: BatchSource,
    batch: int,
    epoch: int,
    config: TrainConfig,
    rank: int,
    world: int,
    dev: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, weights) tensors of this rank's share of each global batch, read chunk group by chunk group.

    The next group is read in a background thread while the current one trains. Leftover events
    of a group start the next one; the last incomplete batch of the epoch is dropped.
    """
    chunk = config.shuffle_chunk
    groups = list(chunk_order(len(source), chunk, config.shuffle_group, config.seed, epoch))
    local = batch // world
    carry_x, carry_w = np.zeros((0, 0), np.float32), np.zeros(0)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(load_chunks, source, groups[0][0], chunk) if groups else None
        for g, (_, perm) in enumerate(groups):
            assert pending is not None  # submitted for every group
            x, w = pending.result()
            pending = (
                pool.submit(load_chunks, source, groups[g + 1][0], chunk)
                if g + 1 < len(groups)
                else None
            )
            x, w = x[perm], w[perm]
            if len(carry_w):
                x, w = np.concatenate([carry_x, x]), np.concatenate([carry_w, w])
            full = len(w) // batch
            for b in range(full):
                start = b * batch + rank * local
                yield (
                    torch.as_tensor(x[start : start + local], device=dev),
                    torch.as_tensor(w[start : start + local], dtype=torch.float32, device=dev),
                )
            carry_x, carry_w = x[full * batch :], w[full * batch :]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    source: BatchSource,
    lam: float,
    batch: int,
    amp: bool,
    device: torch.device | str = "cpu",
    closure_lam: float = 0.0,
    closure_efficiencies: Sequence[float] = DEFAULT_CLOSURE_EFFICIENCIES,
) -> dict[str, float]:
    """Validation loss on fixed consecutive batches: weighted means over all events, mean DisCo² (and
    closure penalty, when ``closure_lam`` > 0) over batches. At ``lam`` = 0 DisCo² enters no loss
    and is only watched: on the first ``DISCO_WATCH_EVENTS`` events of each batch (it costs
    O(N²), more than the epoch's training at the batches of the closure penalty)."""
    s1 = s2 = sw = 0.0
    discos, closures = [], []
    dev = torch.device(device)
    for start in range(0, len(source), batch):
        xn, wn = source.rows(start, start + batch)
        xb = torch.as_tensor(xn, device=dev)
        wb = torch.as_tensor(wn, dtype=torch.float32, device=dev)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            r1, r2 = model(xb)
        r1, r2 = r1.float(), r2.float()
        s1 += float((wb * r1).sum())
        s2 += float((wb * r2).sum())
        sw += float(wb.sum())
        if len(xb) >= 2:
            watch = slice(None) if lam > 0 else slice(DISCO_WATCH_EVENTS)
            discos.append(float(disco_sq(r1[watch], r2[watch], wb[watch])))
            if closure_lam > 0:
                closures.append(float(closure_penalty(r1, r2, wb, closure_efficiencies)))
    d = float(np.mean(discos)) if discos else 0.0
    c = float(np.mean(closures)) if closures else 0.0
    return {
        "r1": s1 / sw,
        "r2": s2 / sw,
        "disco": d,
        "closure": c,
        "loss": s1 / sw + s2 / sw + lam * d + closure_lam * c,
    }


def fit(
    model: nn.Module,
    train_x: np.ndarray,
    train_w: np.ndarray,
    val_x: np.ndarray,
    val_w: np.ndarray,
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    architecture: AEConfig | None = None,
    extra_config: dict[str, Any] | None = None,
) -> TrainResult:
    """Train any module whose forward returns (R1, R2) per event on in-memory arrays; see :func:`fit_sources`."""
    return fit_sources(
        model,
        ArraySource(train_x, train_w),
        ArraySource(val_x, val_w),
        config,
        out_dir,
        resume,
        architecture,
        extra_config,
    )


# settings that may change when resuming: they do not change what the next epoch computes
RESUMABLE_CHANGES = ("epochs", "progress", "device")


def inputs_fingerprint(
    train: BatchSource, val: BatchSource, chunk: int = 1 << 16
) -> dict[str, Any]:
    """sha256 of the training and validation inputs and weights exactly as training reads them."""
    out = {}
    for name, source in (("train", train), ("val", val)):
        digest = hashlib.sha256()
        for start in range(0, len(source), chunk):
            x, w = source.rows(start, start + chunk)
            digest.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
            digest.update(np.ascontiguousarray(w, dtype=np.float64).tobytes())
        out[name] = {"events": len(source), "sha256": digest.hexdigest()}
    return out


def check_resume(
    out_dir: str | Path, config: TrainConfig, fingerprint: dict[str, Any]
) -> dict[str, Any] | None:
    """The checkpoint's state if ``out_dir`` holds one to resume; raises if its inputs or settings differ.

    One line names the first difference: an input (file, event count, content) or a training setting.
    """
    out_dir = Path(out_dir)
    if not ((out_dir / STATE_FILE).exists() and (out_dir / LAST_FILE).exists()):
        return None
    state = read_json(out_dir / STATE_FILE)
    if not isinstance(state, dict):
        raise ValueError(f"{out_dir / STATE_FILE}: not a training state (expected a JSON object)")
    saved_inputs = state.get("inputs")
    if saved_inputs is None:
        raise ValueError(
            f"{out_dir}: cannot resume, {STATE_FILE} records no input fingerprint "
            "(written by an older l1ad); train into a new --out"
        )
    for key in sorted(set(saved_inputs) | set(fingerprint)):
        if saved_inputs.get(key) != fingerprint.get(key):
            raise ValueError(
                f"{out_dir}: cannot resume, the {key} inputs differ from the checkpoint's: "
                f"{_short(saved_inputs.get(key))} then, {_short(fingerprint.get(key))} now"
            )
    saved = state.get("train", {})
    now = config.to_dict()
    # a setting added after the checkpoint was written (closure_lam) had its default's effect then
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for key in now:
        if key not in RESUMABLE_CHANGES and saved.get(key, defaults[key]) != now[key]:
            raise ValueError(
                f"{out_dir}: cannot resume, {key} was {saved.get(key)!r}, now {now[key]!r}"
            )
    return state


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {str(v)[:12]}" for k, v in value.items())
    return repr(value)


def fit_sources(
    model: nn.Module,
    train: BatchSource,
    val: BatchSource,
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    architecture: AEConfig | None = None,
    extra_config: dict[str, Any] | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> TrainResult:
    """Train any module whose forward returns (R1, R2) per event; see the module docstring.

    ``train``/``val`` are in memory or streamed from a file (:mod:`offline.ad.data`); streaming
    needs ``config.shuffle_chunk > 0``. ``fingerprint`` identifies the inputs for ``resume``
    (default: :func:`inputs_fingerprint`, one pass over both sets). Call inside ``torchrun``
    for DDP (:func:`offline.distributed.setup` is done here). Only rank 0 writes to ``out_dir``.
    """
    out_dir = Path(out_dir)
    info = distributed.setup(config.device)
    amp = (
        (info.device.type == "cuda")
        if config.amp is None
        else bool(config.amp and info.device.type == "cuda")
    )
    batch = _global_batch(train, val, config, info)
    fingerprint = inputs_fingerprint(train, val) if fingerprint is None else fingerprint
    loader = _EpochBatches(train, batch, config, info)
    model = model.to(info.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    progress = _start(model, optimizer, out_dir, config, fingerprint, resume, info)
    if info.is_main:
        arch: AEConfig = (
            architecture if architecture is not None else getattr(model, "config", AEConfig())
        )
        save_config(out_dir, arch, config, extra_config)
    net: nn.Module = model
    if info.distributed:
        dev = info.device
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )

    t0 = time.perf_counter()
    bar = tqdm(
        range(progress.start_epoch, config.epochs),
        desc="train",
        disable=not (config.progress and info.is_main),
        initial=progress.start_epoch,
        total=config.epochs,
    )
    for epoch in bar:
        model.train()
        train_means = _train_epoch(
            net, optimizer, loader.epoch(epoch), config, amp, info, progress, epoch
        )
        model.eval()
        val_parts = evaluate(
            model,
            val,
            config.lam,
            batch,
            amp,
            info.device,
            config.closure_lam,
            config.closure_efficiencies,
        )
        monitored = (
            val_parts["loss"] if config.monitor == "loss" else val_parts["r1"] + val_parts["r2"]
        )
        improved = progress.record(
            {
                "epoch": epoch,
                **{f"train_{k}": v for k, v in train_means.items()},
                **{f"val_{k}": v for k, v in val_parts.items()},
            },
            distributed.broadcast_float(monitored),
            config,
        )
        if info.is_main:
            _checkpoint(out_dir, model, optimizer, progress, improved, config, fingerprint)
        bar.set_postfix(
            loss=f"{train_means['loss']:.4g}",
            val=f"{val_parts['loss']:.4g}",
            disco=f"{val_parts['disco']:.3f}",
        )
        if progress.stopped:
            break
    bar.close()
    return _finish(out_dir, progress, time.perf_counter() - t0, config, info, amp)


def _global_batch(
    train: BatchSource, val: BatchSource, config: TrainConfig, info: distributed.DistInfo
) -> int:
    """The global batch: ``config.batch_size`` cut to the training set and to a multiple of the processes."""
    n = len(train)
    if len(val) < 2:
        raise ValueError(f"validation set needs at least 2 events, got {len(val)}")
    batch = min(config.batch_size, n)
    batch -= batch % info.world_size
    if batch < 2 * info.world_size:
        raise ValueError(
            f"{n} training events are too few for a batch on {info.world_size} process(es)"
        )
    if config.batch_size % info.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} must divide by the {info.world_size} processes"
        )
    if config.shuffle_chunk == 0 and not isinstance(train, ArraySource):
        raise ValueError("streamed training reads contiguous chunks: set shuffle_chunk > 0")
    return batch


class _EpochBatches:
    """This rank's (inputs, weights) batches of each epoch: from tensors on the device, or chunk by chunk."""

    def __init__(
        self, train: BatchSource, batch: int, config: TrainConfig, info: distributed.DistInfo
    ) -> None:
        self.train, self.batch, self.config, self.info = train, batch, config, info
        if config.shuffle_chunk == 0 and isinstance(train, ArraySource):  # the only kind it takes
            self.x = torch.as_tensor(np.asarray(train.x, dtype=np.float32), device=info.device)
            self.w = torch.as_tensor(np.asarray(train.w, dtype=np.float32), device=info.device)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info, config = self.info, self.config
        if config.shuffle_chunk > 0:
            return _chunked_batches(
                self.train, self.batch, epoch, config, info.rank, info.world_size, info.device
            )
        order = _batches(
            len(self.train), self.batch, epoch, config.seed, info.rank, info.world_size
        )
        return ((self.x[i], self.w[i]) for i in (idx.to(info.device) for idx in order))


@dataclass
class _Progress:
    """Where training stands: the next epoch, the best one so far, early stopping, the history."""

    start_epoch: int = 0
    best_epoch: int = -1
    best_val: float = math.inf
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    events_seen: int = 0
    stopped: bool = False

    def record(self, row: dict[str, float], monitored: float, config: TrainConfig) -> bool:
        """Add an epoch's row and its monitored validation figure; True when that is the best so
        far. Sets ``stopped`` when patience runs out."""
        self.history.append(row)
        improved = monitored < self.best_val - config.min_delta
        if improved:
            self.best_val, self.best_epoch, self.bad_epochs = monitored, int(row["epoch"]), 0
        else:
            self.bad_epochs += 1
        self.stopped = self.bad_epochs >= config.patience
        return improved


def _start(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    out_dir: Path,
    config: TrainConfig,
    fingerprint: dict[str, Any],
    resume: bool,
    info: distributed.DistInfo,
) -> _Progress:
    """A fresh start, or the model, optimizer and progress of the checkpoint in ``out_dir`` when resuming."""
    state = check_resume(out_dir, config, fingerprint) if resume else None
    if state is None:
        if info.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
        return _Progress()
    tensors = load_tensors(out_dir / LAST_FILE, "resume checkpoint")
    saved_epoch = tensors.pop(EPOCH_TENSOR, None)
    if saved_epoch is not None and int(saved_epoch) != state["epoch"]:
        raise ValueError(
            f"{out_dir}: cannot resume, {LAST_FILE} holds epoch {int(saved_epoch)} but {STATE_FILE} "
            f"epoch {state['epoch']} (the process was killed while checkpointing); train into a new --out"
        )
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("optim.")})
    _restore_optimizer(
        optimizer, {k: v.to(info.device) for k, v in tensors.items()}, state["param_groups"]
    )
    progress = _Progress(
        state["epoch"] + 1,
        state["best_epoch"],
        state["best_val_loss"],
        state["bad_epochs"],
        state["history"],
    )
    if progress.bad_epochs >= config.patience:
        progress.start_epoch = config.epochs  # it had already stopped early
    return progress


def _train_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    config: TrainConfig,
    amp: bool,
    info: distributed.DistInfo,
    progress: _Progress,
    epoch: int,
) -> dict[str, float]:
    """One pass over the epoch's batches; the mean loss and parts per batch."""
    sums = {"loss": 0.0, "r1": 0.0, "r2": 0.0, "disco": 0.0, "closure": 0.0}
    nb = 0
    # seeded by the epoch: the same cuts on every DDP rank and after a resume
    cut_rng = np.random.default_rng([config.seed, epoch])
    for xb, wb in batches:
        with torch.autocast(device_type=info.device.type, dtype=torch.bfloat16, enabled=amp):
            r1, r2 = net(xb)
        grid1, grid2 = (
            jittered_efficiencies(config.closure_efficiencies, config.closure_jitter, cut_rng)
            if config.closure_jitter > 0
            else (config.closure_efficiencies, None)
        )
        parts = pair_loss(r1, r2, wb, config.lam, config.closure_lam, grid1, grid2)
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        optimizer.step()
        sums["loss"] += float(parts.total.detach())
        sums["r1"] += parts.r1
        sums["r2"] += parts.r2
        sums["disco"] += parts.disco
        sums["closure"] += parts.closure
        nb += 1
        progress.events_seen += len(wb) * info.world_size
    return {k: v / max(nb, 1) for k, v in sums.items()}


def _checkpoint(
    out_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: _Progress,
    improved: bool,
    config: TrainConfig,
    fingerprint: dict[str, Any],
) -> None:
    """The best weights (when ``improved``), the last weights with the Adam state, and state.json,
    written as one unit: a signal waits until all three are in place, and the last weights carry
    their epoch (``EPOCH_TENSOR``) so that a checkpoint torn by SIGKILL is refused on resume."""
    epoch = int(progress.history[-1]["epoch"])
    with deferred_interrupts():
        if improved:
            _save_weights(out_dir / BEST_FILE, model)
        _save_weights(out_dir / LAST_FILE, model, optimizer, epoch)
        write_json(
            out_dir / STATE_FILE,
            {
                "epoch": epoch,
                "best_epoch": progress.best_epoch,
                "best_val_loss": progress.best_val,
                "bad_epochs": progress.bad_epochs,
                "history": progress.history,
                "train": config.to_dict(),
                "inputs": fingerprint,
                "param_groups": optimizer.state_dict()["param_groups"],
            },
        )


def _finish(
    out_dir: Path,
    progress: _Progress,
    seconds: float,
    config: TrainConfig,
    info: distributed.DistInfo,
    amp: bool,
) -> TrainResult:
    """The result; rank 0 writes metrics.json and loss.png."""
    distributed.barrier()
    stopped = progress.stopped or progress.bad_epochs >= config.patience
    result = TrainResult(
        out_dir,
        progress.best_epoch,
        progress.best_val,
        len(progress.history),
        progress.stopped,
        progress.history,
        seconds,
        progress.events_seen / seconds if seconds > 0 else 0.0,
    )
    if info.is_main:
        from offline.ad.plots import plot_loss_curves

        write_json(
            out_dir / "metrics.json",
            {
                "best_epoch": progress.best_epoch,
                "best_val_loss": progress.best_val,
                "epochs_run": len(progress.history),
                "stopped_early": stopped,
                "seconds": seconds,
                "events_per_second": result.events_per_second,
                "world_size": info.world_size,
                "device": str(info.device),
                "amp": amp,
                "history": progress.history,
            },
        )
        plot_loss_curves(progress.history, out_dir / "loss.png")
    distributed.barrier()
    return result


def build_pair(config: TrainConfig) -> tuple[AEConfig, AutoencoderPair]:
    """The preset's architecture and a pair initialised from ``config.seed``."""
    arch = preset(config.preset)
    torch.manual_seed(config.seed)
    return arch, AutoencoderPair(arch)


def train_pair(
    train_x: np.ndarray,
    train_w: np.ndarray,
    val_x: np.ndarray,
    val_w: np.ndarray,
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    extra_config: dict[str, Any] | None = None,
) -> TrainResult:
    """Build the preset's pair with ``config.seed`` and :func:`fit` it."""
    arch, model = build_pair(config)
    return fit(model, train_x, train_w, val_x, val_w, config, out_dir, resume, arch, extra_config)
