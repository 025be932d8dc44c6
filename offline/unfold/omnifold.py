"""OmniFold (Andreassen, Komiske, Metodiev, Nachman, Thaler, PRL 124 182001) in torch.

Iteration i, with prior (generator) weights w₀ and push weights ν₀ = 1:

- step 1 (reco level): classify data against simulation weighted by w₀·ν_{i−1};
  pull ω_i = ν_{i−1}·f/(1−f) for simulated events passing reco. Events failing reco
  cannot be reweighted at reco level and keep ω_i = ν_{i−1}.
- step 2 (particle level): classify gen weighted by w₀·ω_i against gen weighted by w₀;
  push ν_i = f/(1−f) as a function of gen only. Events failing gen (fakes) get ν_i = 1.

These are the conventions of the ``omnifold`` package (``hep-lbdl/OmniFold``), so its
results compare one to one. f/(1−f) is computed as exp(logit), never through f.
Non-finite weights raise; optional clipping of f to [ε, 1−ε] warns when it acts.

Ensembles are independent OmniFold runs (own initialisation and train/validation split)
whose weights are averaged; their spread estimates the training uncertainty. Under
``torchrun`` each rank trains members rank, rank + world, … and the weights are summed
across ranks with one ``all_reduce``. Bootstrap replicas (Poisson(1) data weights)
estimate the statistical uncertainty.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from offline.unfold.classifiers import ClassifierFactory, classifier_factory
from offline.unfold.diagnostics import StepDiagnostics


class NonFiniteWeightsError(ValueError):
    """A classifier produced NaN/inf likelihood ratios (usually f → 1); never patched over."""


@dataclass
class OmniFoldConfig:
    """Training settings. Defaults suit ~10⁴–10⁶ events of a few features on CPU or GPU."""

    iterations: int = 4
    ensembles: int = 1
    # "mlp" for (N, F) features, "deepsets" or "transformer" for (N, P, F) particle sets
    # (with ``classifier_options``), or a factory: per-event feature shape -> fresh nn.Module
    classifier: str | ClassifierFactory = "mlp"
    classifier_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 100
    batch_size: int = 8192  # large batches: few optimizer steps per epoch, fast on CPU and GPU
    learning_rate: float = 2e-3
    patience: int = 4  # early stopping on the weighted validation loss
    lr_drops: int = (
        0  # on a plateau, divide the learning rate by 10 this many times before stopping
    )
    val_fraction: float = 0.2
    clip: float | None = None  # ε: clip f to [ε, 1−ε] (warns when it acts); None: no clipping
    warm_start: bool = (
        True  # iteration i starts from iteration i−1's classifiers, as the package does
    )
    seed: int = 0
    device: str | None = None  # default: CUDA when present, CPU otherwise
    # bf16 autocast for the training passes on CUDA (None: whenever on CUDA); the
    # likelihood ratios and validation losses are always evaluated in float32
    autocast: bool | None = None

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.ensembles < 1:
            raise ValueError(f"ensembles must be >= 1, got {self.ensembles}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.clip is not None and not 0 < self.clip < 0.5:
            raise ValueError(f"clip must be in (0, 0.5), got {self.clip}")
        if isinstance(self.classifier, str):
            classifier_factory(self.classifier)  # an unknown name fails here, not mid-run

    def factory(self) -> ClassifierFactory:
        """The classifier factory these settings name."""
        if isinstance(self.classifier, str):
            return classifier_factory(self.classifier, **self.classifier_options)
        return self.classifier


@dataclass
class OmniFoldResult:
    """Weights per iteration (ensemble means) and per member, plus diagnostics."""

    prior: np.ndarray  # (N,) prior (generator) weights of the simulation
    push: np.ndarray  # (K, N) ν_i, ensemble mean
    pull: np.ndarray  # (K, N) ω_i, ensemble mean
    member_push: np.ndarray  # (E, K, N)
    diagnostics: list[StepDiagnostics]
    seconds: float

    @property
    def weights(self) -> np.ndarray:
        """Unfolded particle-level weights of the simulated events: w₀·ν_K."""
        return self.prior * self.push[-1]

    @property
    def reco_weights(self) -> np.ndarray:
        """Step-1 weights of the last iteration at detector level: w₀·ω_K."""
        return self.prior * self.pull[-1]

    def weights_at(self, iteration: int) -> np.ndarray:
        """Unfolded weights after iteration ``iteration`` (1-based)."""
        return self.prior * self.push[iteration - 1]

    @property
    def member_weights(self) -> np.ndarray:
        """(E, N) unfolded weights of each ensemble member."""
        return self.prior[None, :] * self.member_push[:, -1]


# ---------------------------------------------------------------------------- input checks


def _features(name: str, array: ArrayLike) -> np.ndarray:
    arr = np.asarray(array)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name}: expected shape (N,), (N, F) or (N, P, F), got {arr.shape}")
    _check_finite(name, arr)
    return arr.astype(np.float32, copy=False)


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        events = np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1))
        raise ValueError(
            f"{name}: {int(bad.sum())} NaN/inf values in {len(events)} events (first: event "
            f"{int(events[0])}); give events failing a selection a finite placeholder and a "
            "False pass flag instead"
        )


def _vector(
    name: str, array: ArrayLike | None, n: int, n_name: str, default: float | bool
) -> np.ndarray:
    if array is None:
        return np.full(n, default, dtype=bool if isinstance(default, bool) else np.float64)
    arr = np.asarray(array)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, got shape {arr.shape}")
    if len(arr) != n:
        raise ValueError(f"{name}: length {len(arr)} does not match {n_name} ({n} events)")
    if isinstance(default, bool):
        if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name}: pass flags must be boolean (or 0/1)")
        return arr.astype(bool)
    _check_finite(name, arr.astype(np.float64))
    return arr.astype(np.float64)


@dataclass
class _Inputs:
    sim_reco: np.ndarray
    sim_gen: np.ndarray
    data_reco: np.ndarray
    pass_reco: np.ndarray
    pass_gen: np.ndarray
    data_pass_reco: np.ndarray
    prior: np.ndarray
    data_weights: np.ndarray


def check_inputs(
    sim_reco: ArrayLike,
    sim_gen: ArrayLike,
    data_reco: ArrayLike,
    *,
    pass_reco: ArrayLike | None = None,
    pass_gen: ArrayLike | None = None,
    data_pass_reco: ArrayLike | None = None,
    sim_weights: ArrayLike | None = None,
    data_weights: ArrayLike | None = None,
) -> _Inputs:
    """Validate shapes, lengths and finiteness; every error names the offending array."""
    sim_reco = _features("sim_reco", sim_reco)
    sim_gen = _features("sim_gen", sim_gen)
    data_reco = _features("data_reco", data_reco)
    n = len(sim_reco)
    if len(sim_gen) != n:
        raise ValueError(f"sim_gen: length {len(sim_gen)} does not match sim_reco ({n} events)")
    if sim_reco.shape[1:] != data_reco.shape[1:]:
        raise ValueError(
            f"data_reco: per-event shape {data_reco.shape[1:]} differs from sim_reco's {sim_reco.shape[1:]}"
        )
    inputs = _Inputs(
        sim_reco=sim_reco,
        sim_gen=sim_gen,
        data_reco=data_reco,
        pass_reco=_vector("pass_reco", pass_reco, n, "sim_reco", True),
        pass_gen=_vector("pass_gen", pass_gen, n, "sim_reco", True),
        data_pass_reco=_vector("data_pass_reco", data_pass_reco, len(data_reco), "data_reco", True),
        prior=_vector("sim_weights", sim_weights, n, "sim_reco", 1.0),
        data_weights=_vector("data_weights", data_weights, len(data_reco), "data_reco", 1.0),
    )
    if not inputs.pass_reco.any():
        raise ValueError("pass_reco: no simulated event passes reco")
    if not inputs.pass_gen.any():
        raise ValueError("pass_gen: no simulated event passes gen")
    if inputs.data_weights[inputs.data_pass_reco].sum() <= 0:
        raise ValueError("data_weights: the data passing reco have no positive total weight")
    if inputs.prior[inputs.pass_reco].sum() <= 0:
        raise ValueError("sim_weights: the simulation passing reco has no positive total weight")
    return inputs


# ---------------------------------------------------------------------------- torch helpers


def default_device() -> torch.device:
    if torch.cuda.is_available():
        rank = int(torch.distributed.get_rank()) if _distributed() else 0
        return torch.device(f"cuda:{rank % torch.cuda.device_count()}")
    return torch.device("cpu")


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _standardize(arrays: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """Shift/scale every feature by mean/std over the real entries of all ``arrays`` together.

    Particle sets keep their all-zero padding rows at zero so the Deep Sets mask still works.
    """
    joined = np.concatenate([a.reshape(-1, a.shape[-1]) for a in arrays])
    if arrays[0].ndim == 3:
        joined = joined[(joined != 0).any(axis=1)]
    mean = joined.mean(axis=0)
    std = joined.std(axis=0)
    std[std == 0] = 1.0
    out = []
    for a in arrays:
        z = (a - mean) / std
        if a.ndim == 3:
            z[~(a != 0).any(axis=-1)] = 0.0
        out.append(torch.as_tensor(z, dtype=torch.float32, device=device))
    return out


@dataclass
class _Fit:
    epochs: int
    val_loss: float


def _weighted_bce(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    loss = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return (loss * weights).mean()


def _fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    split: tuple[torch.Tensor, torch.Tensor],
    config: OmniFoldConfig,
    generator: torch.Generator,
) -> _Fit:
    """Weighted BCE with Adam, large batches, early stopping (after ``lr_drops`` learning-rate
    drops on plateaus); restores the best epoch."""
    w = w / w.mean()
    train, val = split
    xt, yt, wt = x[train], y[train], w[train]
    xv, yv, wv = x[val], y[val], w[val]
    n = len(yt)
    # at least 8 optimizer steps per epoch, so early stopping sees progress on small samples
    batch = max(1, min(config.batch_size, n // 8))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    amp = x.device.type == "cuda" if config.autocast is None else config.autocast
    best, best_state, bad, epoch, drops = math.inf, copy.deepcopy(model.state_dict()), 0, 0, 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(x.device)
        for start in range(0, n - batch + 1, batch):  # drop the ragged last batch
            idx = order[start : start + batch]
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(xt[idx])
            loss = _weighted_bce(logits.float(), yt[idx], wt[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(_weighted_bce(_logits(model, xv), yv, wv))
        if not math.isfinite(val_loss):
            raise NonFiniteWeightsError(f"validation loss became {val_loss} in epoch {epoch}")
        if val_loss < best * (1 - 1e-6):  # BCE > 0; also true for best = inf
            best, best_state, bad = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= config.patience:
                if drops >= config.lr_drops:
                    break
                # plateau: go back to the best epoch and refine with a 10x smaller step
                drops, bad = drops + 1, 0
                model.load_state_dict(best_state)
                for group in optimizer.param_groups:
                    group["lr"] *= 0.1
    model.load_state_dict(best_state)
    return _Fit(epochs=epoch, val_loss=best)


def _logits(model: nn.Module, x: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    if x.ndim == 3:  # particle sets: about ``chunk`` particles per pass bounds the memory
        chunk = max(1, chunk // x.shape[1])
    with torch.no_grad():
        return torch.cat([model(x[i : i + chunk]) for i in range(0, len(x), chunk)])


def _ratio(
    model: nn.Module, x: torch.Tensor, clip: float | None, where: str
) -> tuple[np.ndarray, int]:
    """Likelihood ratio f/(1−f) = exp(logit), in float64; clipped count; raises on NaN/inf."""
    model.eval()
    logits = _logits(model, x).double().cpu().numpy()
    clipped = 0
    if clip is not None:
        bound = math.log((1 - clip) / clip)
        clipped = int(np.sum(np.abs(logits) > bound))
        if clipped:
            warnings.warn(
                f"{where}: clipped f to [{clip}, {1 - clip}] for {clipped} of {len(logits)} events",
                UserWarning,
                stacklevel=4,
            )
        logits = np.clip(logits, -bound, bound)
    with np.errstate(over="ignore"):
        ratio = np.exp(logits)
    bad = ~np.isfinite(ratio)
    if bad.any():
        raise NonFiniteWeightsError(
            f"{where}: {int(bad.sum())} of {len(ratio)} likelihood ratios are NaN/inf "
            f"(classifier output f → 1); set clip (e.g. 1e-6) or regularise the classifier"
        )
    return ratio, clipped


# ---------------------------------------------------------------------------- the algorithm


def _split(
    n: int, config: OmniFoldConfig, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=generator)
    n_val = max(1, round(n * config.val_fraction))
    return perm[n_val:].to(device), perm[:n_val].to(device)


def _run_member(
    inputs: _Inputs,
    tensors: dict[str, torch.Tensor],
    config: OmniFoldConfig,
    member: int,
    log: Callable[[str], None] | None,
) -> tuple[np.ndarray, np.ndarray, list[StepDiagnostics]]:
    device = tensors["x1"].device
    seed = config.seed + 1000 * member
    generator = torch.Generator().manual_seed(seed)
    shape1 = tuple(tensors["x1"].shape[1:])
    shape2 = tuple(tensors["x2"].shape[1:])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        factory = config.factory()
        model1, model2 = factory(shape1).to(device), factory(shape2).to(device)
    fresh1, fresh2 = copy.deepcopy(model1.state_dict()), copy.deepcopy(model2.state_dict())
    split1 = _split(len(tensors["y1"]), config, generator, device)
    split2 = _split(len(tensors["y2"]), config, generator, device)

    pr, pg = inputs.pass_reco, inputs.pass_gen
    prior = inputs.prior
    data_w = inputs.data_weights[inputs.data_pass_reco]
    n = len(prior)
    push = np.ones(n)
    pushes, pulls, records = [], [], []
    models = {
        1: (model1, fresh1, split1, "x1", "y1", "sim_reco_pass"),
        2: (model2, fresh2, split2, "x2", "y2", "sim_gen_pass"),
    }

    def step(it: int, number: int, weights: np.ndarray) -> tuple[np.ndarray, int, _Fit]:
        """Train step ``number``'s classifier on ``weights``; the likelihood ratio on the passing events."""
        model, fresh, split, x, y, passing = models[number]
        if not config.warm_start:
            model.load_state_dict(fresh)
        w = torch.as_tensor(weights, dtype=torch.float32, device=device)
        fit = _fit(model, tensors[x], tensors[y], w, split, config, generator)
        ratio, clipped = _ratio(
            model, tensors[passing], config.clip, f"iteration {it} step {number}"
        )
        return ratio, clipped, fit

    def record(
        it: int, number: int, weights: np.ndarray, clipped: int, fit: _Fit, t0: float
    ) -> None:
        records.append(
            StepDiagnostics.from_weights(
                weights,
                iteration=it,
                step=number,
                member=member,
                epochs=fit.epochs,
                val_loss=fit.val_loss,
                clipped=clipped,
                seconds=time.perf_counter() - t0,
            )
        )

    for it in range(1, config.iterations + 1):
        # step 1: data vs simulation weighted by w0 * push, at reco level
        t0 = time.perf_counter()
        ratio, clipped, fit = step(it, 1, np.concatenate([prior[pr] * push[pr], data_w]))
        pull = push.copy()  # events failing reco keep their push weight
        pull[pr] = push[pr] * ratio
        record(it, 1, prior * pull, clipped, fit, t0)
        # step 2: gen weighted by w0 * pull vs gen weighted by w0
        t0 = time.perf_counter()
        ratio, clipped, fit = step(it, 2, np.concatenate([prior[pg], prior[pg] * pull[pg]]))
        push = np.ones(n)  # events failing gen (fakes) get push weight 1
        push[pg] = ratio
        record(it, 2, prior * push, clipped, fit, t0)
        pulls.append(pull)
        pushes.append(push)
        if log is not None:
            r1, r2 = records[-2], records[-1]
            log(
                f"member {member} iteration {it}: step 1 {r1.epochs} epochs, ESS {r1.ess_fraction:.3f}; "
                f"step 2 {r2.epochs} epochs, ESS {r2.ess_fraction:.3f}, max weight {r2.max_weight:.3g}"
            )
    return np.stack(pushes), np.stack(pulls), records


def omnifold(
    sim_reco: ArrayLike,
    sim_gen: ArrayLike,
    data_reco: ArrayLike,
    *,
    pass_reco: ArrayLike | None = None,
    pass_gen: ArrayLike | None = None,
    data_pass_reco: ArrayLike | None = None,
    sim_weights: ArrayLike | None = None,
    data_weights: ArrayLike | None = None,
    config: OmniFoldConfig | None = None,
    bootstrap_seed: int | None = None,
    log: Callable[[str], None] | None = None,
) -> OmniFoldResult:
    """Unfold ``data_reco`` with the simulation (``sim_reco``, ``sim_gen``), event by event.

    Features are (N,), (N, F) or (N, P, F) arrays (the last for the ``deepsets`` and
    ``transformer`` classifiers, all-zero rows = padding). ``pass_reco``/``pass_gen`` flag simulated events
    passing the detector-/particle-level selection, ``data_pass_reco`` the data events;
    ``sim_weights`` (generator weights) seed the prior. ``bootstrap_seed`` multiplies the
    data weights by Poisson(1) draws (one bootstrap replica).
    """
    config = config or OmniFoldConfig()
    inputs = check_inputs(
        sim_reco,
        sim_gen,
        data_reco,
        pass_reco=pass_reco,
        pass_gen=pass_gen,
        data_pass_reco=data_pass_reco,
        sim_weights=sim_weights,
        data_weights=data_weights,
    )
    if bootstrap_seed is not None:
        rng = np.random.default_rng(bootstrap_seed)
        inputs.data_weights = inputs.data_weights * rng.poisson(1.0, len(inputs.data_weights))
    start = time.perf_counter()
    device = torch.device(config.device) if config.device else default_device()

    pr, pg, dp = inputs.pass_reco, inputs.pass_gen, inputs.data_pass_reco
    sim_reco_t, data_reco_t = _standardize([inputs.sim_reco[pr], inputs.data_reco[dp]], device)
    (sim_gen_t,) = _standardize([inputs.sim_gen[pg]], device)
    tensors = {
        "sim_reco_pass": sim_reco_t,
        "sim_gen_pass": sim_gen_t,
        "x1": torch.cat([sim_reco_t, data_reco_t]),
        "y1": torch.cat([torch.zeros(len(sim_reco_t)), torch.ones(len(data_reco_t))]).to(device),
        "x2": torch.cat([sim_gen_t, sim_gen_t]),
        "y2": torch.cat([torch.zeros(len(sim_gen_t)), torch.ones(len(sim_gen_t))]).to(device),
    }

    rank, world = (
        (torch.distributed.get_rank(), torch.distributed.get_world_size())
        if _distributed()
        else (0, 1)
    )
    n, k, e = len(inputs.prior), config.iterations, config.ensembles
    member_push = np.zeros((e, k, n))
    member_pull = np.zeros((e, k, n))
    records: list[StepDiagnostics] = []
    for member in range(rank, e, world):
        push, pull, rec = _run_member(inputs, tensors, config, member, log)
        member_push[member], member_pull[member] = push, pull
        records += rec
    if world > 1:
        member_push, member_pull, records = _gather(member_push, member_pull, records, device)
    records.sort(key=lambda r: (r.member, r.iteration, r.step))
    return OmniFoldResult(
        prior=inputs.prior,
        push=member_push.mean(axis=0),
        pull=member_pull.mean(axis=0),
        member_push=member_push,
        diagnostics=records,
        seconds=time.perf_counter() - start,
    )


def _gather(
    member_push: np.ndarray,
    member_pull: np.ndarray,
    records: list[StepDiagnostics],
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray, list[StepDiagnostics]]:
    """Sum the per-rank member weights (disjoint rows) and collect diagnostics on every rank."""
    both = torch.as_tensor(np.stack([member_push, member_pull]), dtype=torch.float64, device=device)
    torch.distributed.all_reduce(both)
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, records)
    merged = [r for part in gathered for r in part]
    summed = both.cpu().numpy()
    return summed[0], summed[1], merged


def bootstrap(
    sim_reco: ArrayLike,
    sim_gen: ArrayLike,
    data_reco: ArrayLike,
    *,
    replicas: int,
    config: OmniFoldConfig | None = None,
    seed: int = 1,
    **kwargs: Any,
) -> np.ndarray:
    """(replicas, N) unfolded weights, each from data reweighted by Poisson(1) draws.

    Each replica is a full OmniFold run with its own classifier seed; the spread of
    histograms filled with these weights is the statistical uncertainty.
    """
    config = config or OmniFoldConfig()
    out = []
    for r in range(replicas):
        cfg = replace(config, seed=config.seed + 7919 * (r + 1))
        out.append(
            omnifold(
                sim_reco, sim_gen, data_reco, config=cfg, bootstrap_seed=seed + r, **kwargs
            ).weights
        )
    return np.stack(out)
