"""The whole trigger, bit-exact: hardware words -> preprocessing -> both autoencoders -> R1, R2 -> bits.

Executes a FirmwareSpec and its quantized weights in the order the firmware computes
(``firmware/templates/trigger_top.cpp.tpl`` around hls4ml's network function):

1. the words arrive as ``hardware_input`` (out-of-range words wrap/saturate as it says);
2. preprocessing ``(word - offset) >> shift``, exact, then cast to ``input``;
3. each dense layer as ``nnet::dense_latency`` (every product cast to the accumulator,
   added in input order; :func:`emulation.network.dense_latency`), cast to ``result``,
   then ReLU/linear cast to ``activation_result``;
4. per score ``difference_j = cast(x_j - xhat_j)`` (``reconstruction``; for ``latent_norm``
   the term is the encoder's output ``mu_j``), ``square_j = cast(term_j**2)``,
   ``score = cast(score + square_j)`` one output at a time in ``outputs`` order;
5. ``A = R1 > t1 & R2 > t2``, B, C, D, and the trigger bit = OR of ``fire_on``
   (:func:`offline.ad.abcd.region_masks`, :func:`offline.ad.abcd.fire_mask`).

Everything is int64 mantissas (or integers carried exactly in float64 on the fast path of
:mod:`emulation.float_path`), so results are exact by construction. Where a cheaper
computation is provably identical it is used: the networks run on the float64 BLAS
path when the types rule out rounding and overflow in the sums, and the score is one
sum (saturated or wrapped once) when its additions cannot round and its terms are
non-negative (saturation) or it wraps (modular arithmetic); otherwise the loops run
literally.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from emulation.fixed import (
    FixedType,
    OverflowCounter,
    cast,
    multiply,
    plus_type,
    product_type,
)
from emulation.float_path import (
    MAX_FLOAT_WIDTH,
    NUMPY,
    FloatGraph,
    Numpy,
    apply_ops,
    cast_float,
    cast_ops,
    float_ok,
    namespace,
)
from emulation.graph import Graph, run_graph
from emulation.network import keep_freed_memory
from emulation.spec import (
    LATENT_NORM,
    REGIONS,
    AutoencoderSpec,
    FirmwareSpec,
    check_weights,
    preprocess_type,
    sum_type,
    sums_in_one_go,
)
from emulation.spec_graph import network_graph
from offline.ad.abcd import fire_mask, region_masks
from offline.events.schema import N_FEATURES

__all__ = [
    "REGIONS",
    "TriggerBits",
    "TriggerEmulator",
    "TriggerOutputs",
    "emulate_trigger",
    "input_mantissas",
    "mismatching_events",
    "place_thresholds",
    "score_mantissas",
    "threshold_mantissas",
]


class TriggerBits(Protocol):
    """What the firmware checks per event: R1, R2 (score mantissas), region bits (N, 4) A-D, trigger bit.

    ``TriggerOutputs`` and ``firmware.CSimOutputs`` both have these fields."""

    r1: np.ndarray
    r2: np.ndarray
    regions: np.ndarray
    trigger: np.ndarray


@dataclass
class TriggerOutputs:
    """Per event: R1, R2 as mantissas of the score types, the ABCD bits (N, 4) A,B,C,D, the trigger bit.

    ``inputs`` (mantissas of ``spec.input``) and ``reconstructions`` (mantissas of each
    autoencoder's output type) are kept only on request (they are 57 columns per event).
    ``firmware`` checks tb_data, its C simulation and RTL against these (its ``reference``).
    """

    r1: np.ndarray
    r2: np.ndarray
    regions: np.ndarray  # (N, 4) uint8
    trigger: np.ndarray  # (N,) uint8
    inputs: np.ndarray | None = None
    reconstructions: tuple[np.ndarray, np.ndarray] | None = None
    r1_fractional: int = 0
    r2_fractional: int = 0
    overflows: OverflowCounter | None = None

    def __len__(self) -> int:
        return len(self.r1)

    @property
    def r1_float(self) -> np.ndarray:
        """R1 values (exact: score types are at most 52 bits wide in practice)."""
        return np.ldexp(self.r1.astype(np.float64), -self.r1_fractional)

    @property
    def r2_float(self) -> np.ndarray:
        return np.ldexp(self.r2.astype(np.float64), -self.r2_fractional)

    def mismatches(self, other: TriggerBits) -> np.ndarray:
        """Per event: whether R1, R2, a region bit or the trigger bit differ from ``other``."""
        return mismatching_events(self, other)


def mismatching_events(a: TriggerBits, b: TriggerBits) -> np.ndarray:
    """Per event: whether R1, R2, a region bit or the trigger bit of ``a`` and ``b`` differ.

    The one comparison of trigger outputs (emulator, C simulation, RTL): R1 and R2 in the
    same units on both sides (score mantissas, or both as values).
    """
    if len(a.r1) != len(b.r1):
        raise ValueError(f"cannot compare outputs of {len(a.r1)} and {len(b.r1)} events")
    return np.asarray(
        (np.asarray(a.r1) != np.asarray(b.r1))
        | (np.asarray(a.r2) != np.asarray(b.r2))
        | (np.asarray(a.regions) != np.asarray(b.regions)).any(axis=1)
        | (np.asarray(a.trigger) != np.asarray(b.trigger))
    )


def threshold_mantissas(spec: FirmwareSpec) -> tuple[int, int]:
    """The thresholds as mantissas of the score types (the spec guarantees they are on the grid)."""
    t = spec.trigger
    f1 = spec.autoencoders[0].score.score.fractional
    f2 = spec.autoencoders[1].score.score.fractional
    return int(math.ldexp(t.threshold_r1, f1)), int(math.ldexp(t.threshold_r2, f2))


def _terms(
    aspec: AutoencoderSpec,
    x: np.ndarray,
    x_type: FixedType,
    xhat: np.ndarray,
    xhat_type: FixedType,
    counter: OverflowCounter | None,
    name: str,
) -> tuple[np.ndarray, FixedType]:
    """Mantissas and type of the values the score squares, at its ``outputs``: the cast differences,
    or the network's output itself (``latent_norm``)."""
    s = aspec.score
    cols = np.asarray(s.outputs, dtype=np.int64)
    if s.kind == LATENT_NORM:
        return xhat[:, cols], xhat_type
    assert s.difference is not None  # validated: a reconstruction has a difference type
    frac = max(x_type.fractional, xhat_type.fractional)
    diff = (x[:, cols] << np.int64(frac - x_type.fractional)) - (
        xhat[:, cols] << np.int64(frac - xhat_type.fractional)
    )
    return cast(diff, frac, s.difference, counter, f"{name}.difference"), s.difference


def score_mantissas(
    aspec: AutoencoderSpec,
    x: np.ndarray,
    x_type: FixedType,
    xhat: np.ndarray,
    xhat_type: FixedType,
    counter: OverflowCounter | None = None,
    name: str = "ae",
) -> np.ndarray:
    """The score (mantissas of ``score``) of input/output mantissas (N, 57) and (N, n_out):
    the reconstruction error, or the latent norm of the output (``x`` unused)."""
    s = aspec.score
    term, t = _terms(aspec, x, x_type, xhat, xhat_type, counter, name)
    prod, prod_t = multiply(term, t, term, t)
    sq = cast(prod, prod_t, s.square, counter, f"{name}.square")
    frac = max(s.score.fractional, s.square.fractional)
    if sums_in_one_go(s):
        # the exact sum fits int64: |square| < 2**61 and at most 57 terms are checked by the width limits
        total = sq.sum(axis=1, dtype=np.int64) << np.int64(frac - s.square.fractional)
        return cast(total, frac, s.score, counter, f"{name}.score")
    acc = np.zeros(len(term), dtype=np.int64)
    hit = np.zeros(len(term), dtype=bool)
    for j in range(sq.shape[1]):  # the literal loop: score_t acc; acc += sq
        exact = (acc << np.int64(frac - s.score.fractional)) + (
            sq[:, j] << np.int64(frac - s.square.fractional)
        )
        acc = cast(exact, frac, s.score)
        hit |= (acc << np.int64(frac - s.score.fractional)) != exact
    if counter is not None:
        counter.record(f"{name}.score", int(hit.sum()), len(hit))
    return acc


def _score_dtype(aspec: AutoencoderSpec, x_type: FixedType, xhat_type: FixedType) -> str | None:
    """The float type :func:`score_float` is exact in for these types (float32 first), or None."""
    s = aspec.score
    t = xhat_type if s.difference is None else s.difference
    prod_t = product_type(t, t)
    sum_t = sum_type(s.square, len(s.outputs))
    casts = [(prod_t, s.square), (sum_t, s.score)]
    types = [xhat_type, prod_t, sum_t, s.square, s.score]
    if s.difference is not None:
        diff_t = plus_type(x_type, xhat_type)
        casts.append((diff_t, s.difference))
        types += [x_type, diff_t, s.difference]
    if not sums_in_one_go(s) or any(t.width > MAX_FLOAT_WIDTH for t in types):
        return None
    for dtype, bits in (("float32", 23), ("float64", MAX_FLOAT_WIDTH)):
        if all(t.width <= bits for t in types) and all(float_ok(a, b, dtype) for a, b in casts):
            return dtype
    return None


def score_float(
    aspec: AutoencoderSpec,
    x: Any,
    x_type: FixedType,
    xhat: Any,
    xhat_type: FixedType,
    counter: OverflowCounter | None = None,
    name: str = "ae",
    xp: Numpy = NUMPY,
) -> Any | None:
    """:func:`score_mantissas` on float mantissas (exact integers, arrays of ``xp``), or None where it needs the integer loop.

    The difference cast's scale is applied to both operands before subtracting (the
    same exact value, one pass fewer).
    """
    s = aspec.score
    if not sums_in_one_go(s):
        return None
    cols = list(s.outputs)
    if cols != list(range(xhat.shape[1])):
        index = np.asarray(cols)
        xhat = xp.take_cols(xhat, index)
        if s.difference is not None:
            x = xp.take_cols(x, index)
    if s.difference is None:  # latent_norm: the output itself
        d = xhat * 1.0
    else:
        diff_t = plus_type(x_type, xhat_type)
        ops = list(cast_ops(diff_t, s.difference, f"{name}.difference"))
        k = 1.0
        while ops and ops[0].kind == "scale":
            k *= ops.pop(0).value
        d = x * (2.0 ** (diff_t.fractional - x_type.fractional) * k)
        d -= xhat * (2.0 ** (diff_t.fractional - xhat_type.fractional) * k)
        d = apply_ops(d, ops, counter, xp)
    d *= d
    t = xhat_type if s.difference is None else s.difference
    sq = cast_float(d, product_type(t, t), s.square, counter, f"{name}.square", xp)
    total = sq.sum(1)
    return cast_float(total, sum_type(s.square, len(cols)), s.score, counter, f"{name}.score", xp)


class _InputStage:
    """Steps 1-2 (hardware words -> mantissas of ``spec.input``): needs the spec only, not the weights."""

    def __init__(self, spec: FirmwareSpec) -> None:
        self.spec = spec
        pre = spec.preprocessing
        hw = spec.hardware_input
        shifts = np.asarray(pre.shifts, dtype=np.int64)
        # (value - offset) * 2**-shift, exact in the spec's preprocessing type (the wrapper's pre_t)
        pre_type = preprocess_type(spec)
        self.pre_frac = pre_type.fractional
        self._word_shift = self.pre_frac - shifts - hw.fractional  # >= 0 unless hw.fractional < 0
        self._offsets = np.asarray(pre.offsets, dtype=np.int64)
        self._offset_shift = self.pre_frac - shifts
        # float path of the inputs: exact while the preprocessed mantissas stay below 2**52
        self._pre_type = pre_type if pre_type.width <= MAX_FLOAT_WIDTH else None
        self._float_inputs = (
            hw.fractional == 0
            and self._pre_type is not None
            and spec.input.width <= MAX_FLOAT_WIDTH
            and float_ok(self._pre_type, spec.input)
        )
        if self._float_inputs:
            self._scale = np.ldexp(1.0, self._word_shift.astype(np.int64)).astype(np.float64)
            self._shifted_offsets = (self._offsets << self._offset_shift).astype(np.float64)

    def __call__(self, words: np.ndarray, counter: OverflowCounter | None = None) -> np.ndarray:
        """Hardware words (N, 57) -> mantissas of ``spec.input``."""
        words = np.asarray(words)
        if words.ndim != 2 or words.shape[1] != N_FEATURES:
            raise ValueError(
                f"expected hardware words of shape (N, {N_FEATURES}), got {words.shape}"
            )
        if words.dtype.kind not in "iu":
            if words.size and not np.array_equal(words, np.rint(words)):
                raise ValueError("hardware words must be integers")
            words = words.astype(np.int64)
        hw = self.spec.hardware_input
        m = cast(words.astype(np.int64, copy=False), 0, hw, counter, "hardware_input")
        ws = self._word_shift
        if (ws >= 0).all():
            value = m << ws
        else:  # hw with negative fractional bits: its mantissa is in units of 2**-hw.fractional
            value = np.where(ws >= 0, m << np.maximum(ws, 0), m >> np.maximum(-ws, 0))
        value = value - (self._offsets << self._offset_shift)
        return cast(value, self.pre_frac, self.spec.input, counter, "input")

    def as_float(self, words: np.ndarray, counter: OverflowCounter | None) -> np.ndarray | None:
        """``__call__`` as float64 mantissas, or None when a word is outside ``hardware_input`` (integer path)."""
        pre = self._pre_type
        if (
            not self._float_inputs or pre is None or words.dtype.kind not in "iu"
        ):  # _float_inputs implies pre
            return None
        hw = self.spec.hardware_input
        if words.size and (int(words.min()) < hw.min_int or int(words.max()) > hw.max_int):
            return None
        if counter is not None:
            counter.record("hardware_input", 0, words.size)
        y = words.astype(np.float64)
        y *= self._scale
        y -= self._shifted_offsets
        return cast_float(y, pre, self.spec.input, counter, "input")


def input_mantissas(
    spec: FirmwareSpec, words: np.ndarray, counter: OverflowCounter | None = None
) -> np.ndarray:
    """Hardware words (N, 57) -> mantissas of ``spec.input``: the trigger's first stage, no weights needed.

    Times ``2**-spec.input.fractional`` these are the values quantization-aware training feeds the pair.
    """
    return _InputStage(spec)(words, counter)


# One block of events: R1, R2, the input mantissas and each autoencoder's reconstruction (the last two kept on request).
_Chunk = tuple[np.ndarray, np.ndarray, np.ndarray | None, list[np.ndarray | None]]


def _joined(blocks: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    return np.concatenate(blocks) if blocks else empty


class TriggerEmulator:
    """A FirmwareSpec and its weights, prepared once (weight mantissas, fast-path plans) for many events."""

    def __init__(self, spec: FirmwareSpec, weights: dict[str, np.ndarray], float_path: bool = True,
                 device: str | None = None) -> None:  # fmt: skip
        """``float_path=False`` runs every stage on the integer loops (the reference; same bits).

        ``device``: where the float path runs (``emulation.float_path.namespace``: "cpu" is
        numpy, "cuda" torch on the GPU, "auto" CUDA when present).
        """
        self.xp = namespace(device)
        if not isinstance(spec, FirmwareSpec):
            raise ValueError(f"expected a FirmwareSpec, got {type(spec).__name__}")
        check_weights(spec, weights)
        self.spec = spec
        self.graphs: tuple[Graph, Graph] = (
            network_graph(spec, 0, weights),
            network_graph(spec, 1, weights),
        )
        # Each network on the float path (float32/float64 per layer where provably exact).
        dtypes = ("float32", "float64") if float_path else ()
        self.programs = tuple(FloatGraph(g, dtypes) for g in self.graphs)
        self.score_dtypes = tuple(
            _score_dtype(a, spec.input, a.output_type) if prog.all_float and float_path else None
            for prog, a in zip(self.programs, spec.autoencoders, strict=True)
        )
        self.thresholds = threshold_mantissas(spec)
        self._inputs = _InputStage(spec)

    # ---- stages --------------------------------------------------------------
    def inputs(self, words: np.ndarray, counter: OverflowCounter | None = None) -> np.ndarray:
        """Hardware words (N, 57) -> mantissas of ``spec.input``."""
        return self._inputs(words, counter)

    def reconstruction(
        self, x: np.ndarray, ae: int, counter: OverflowCounter | None = None
    ) -> np.ndarray:
        """Autoencoder ``ae``'s output mantissas for input mantissas (N, 57)."""
        program = self.programs[ae]
        if program.all_float:
            return np.asarray(program.run([x], counter)[0]).astype(np.int64)
        return run_graph(self.graphs[ae], [x], counter)[0]

    def _chunk(self, block: np.ndarray, counter: OverflowCounter | None, keep: bool) -> _Chunk:
        """(R1, R2, input mantissas, reconstructions) of one block of words (the last two only with ``keep``)."""
        floats = any(p.all_float for p in self.programs)
        xf = self._inputs.as_float(block, counter) if floats else None
        x: np.ndarray | None = None
        if xf is None:
            x = self.inputs(block, counter)
            if floats:
                xf = x.astype(np.float64)
        as_type: dict[str, np.ndarray] = {}

        def x_as(dtype: str) -> np.ndarray:  # the input mantissas converted once per dtype
            if dtype not in as_type:
                assert xf is not None  # float programs exist, so the inputs were made as floats
                as_type[dtype] = xf.astype(dtype, copy=False)
            return as_type[dtype]

        def integers() -> np.ndarray:  # the input mantissas as int64, from the floats at most once
            nonlocal x
            if x is None:
                assert xf is not None  # x is None only when the inputs were made as floats
                x = xf.astype(np.int64)
            return x

        scores: list[np.ndarray] = []
        recos: list[np.ndarray | None] = []
        for ae, aspec in enumerate(self.spec.autoencoders):
            program, graph = self.programs[ae], self.graphs[ae]
            score: np.ndarray | None = None
            xhat: np.ndarray | None = None
            if not program.all_float or keep:
                integers()
            if program.all_float:
                xp = self.xp
                first = program.steps[0].dtype
                assert first is not None  # every step of an all-float program runs in floats
                xhat_f = program.run([x_as(first)], counter, xp)[0]
                dtype = self.score_dtypes[ae]
                if dtype is not None:
                    sub = OverflowCounter() if counter is not None else None
                    x_d, xhat_d = (
                        xp.asarray(x_as(dtype), xp.dtype(dtype))[0],
                        xp.asarray(xhat_f, xp.dtype(dtype))[0],
                    )
                    score = score_float(
                        aspec,
                        x_d,
                        self.spec.input,
                        xhat_d,
                        aspec.output_type,
                        sub,
                        aspec.name,
                        xp,
                    )
                    if score is not None:
                        score = xp.to_numpy(score)
                        if counter is not None and sub is not None:
                            counter.merge(sub)
                if score is None or keep:
                    xhat = xp.to_numpy(xhat_f).astype(np.int64)
            else:
                xhat = run_graph(graph, [integers()], counter)[0]
            if score is None:
                assert xhat is not None  # both paths above reconstruct when they give no score
                score = score_mantissas(
                    aspec,
                    integers(),
                    self.spec.input,
                    xhat,
                    aspec.output_type,
                    counter,
                    aspec.name,
                )
            scores.append(score)
            recos.append(xhat)
        return scores[0], scores[1], x, recos

    def __call__(
        self,
        words: np.ndarray,
        counter: OverflowCounter | None = None,
        keep_intermediates: bool = False,
        chunk_size: int = 4096,
        progress: Callable[[int], None] | None = None,
        workers: int = 1,
    ) -> TriggerOutputs:
        """Every output of the trigger for hardware words (N, 57).

        Chunks of a few thousand events keep temporaries in cache; ``workers`` threads run
        chunks side by side (numpy releases the GIL: pays off on an idle multi-core machine).
        """
        words = np.asarray(words)
        if words.ndim != 2 or words.shape[1] != N_FEATURES:
            raise ValueError(
                f"expected hardware words of shape (N, {N_FEATURES}), got {words.shape}"
            )
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        keep_freed_memory()
        n = len(words)
        r = [np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)]
        xs: list[np.ndarray] = []
        recos: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        starts = range(0, n, chunk_size)

        def work(
            lo: int,
        ) -> tuple[
            np.ndarray,
            np.ndarray,
            np.ndarray | None,
            list[np.ndarray | None],
            OverflowCounter | None,
        ]:
            sub = OverflowCounter() if counter is not None else None
            return (*self._chunk(words[lo : lo + chunk_size], sub, keep_intermediates), sub)

        if workers > 1 and len(starts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(workers)
            results = pool.map(work, starts)
        else:
            pool, results = None, map(work, starts)
        try:
            for lo, (s1, s2, x, xhats, sub) in zip(starts, results, strict=True):
                r[0][lo : lo + len(s1)] = s1
                r[1][lo : lo + len(s1)] = s2
                if counter is not None and sub is not None:
                    counter.merge(sub)
                if keep_intermediates:
                    assert (
                        x is not None and xhats[0] is not None and xhats[1] is not None
                    )  # kept on request
                    xs.append(x)
                    recos[0].append(xhats[0])
                    recos[1].append(xhats[1])
                if progress is not None:
                    progress(len(s1))
        finally:
            if pool is not None:
                pool.shutdown()
        masks = region_masks(r[0], r[1], *self.thresholds)
        regions = np.stack([masks[k] for k in REGIONS], axis=1)
        trigger = fire_mask(masks, self.spec.trigger.fire_on)
        empty = np.zeros((0, N_FEATURES), dtype=np.int64)
        return TriggerOutputs(
            r[0],
            r[1],
            regions.astype(np.uint8),
            trigger.astype(np.uint8),
            (np.concatenate(xs) if xs else empty) if keep_intermediates else None,
            (_joined(recos[0], empty), _joined(recos[1], empty)) if keep_intermediates else None,
            self.spec.autoencoders[0].score.score.fractional,
            self.spec.autoencoders[1].score.score.fractional,
            counter,
        )


def emulate_trigger(
    spec: FirmwareSpec,
    weights: dict[str, np.ndarray],
    words: np.ndarray,
    counter: OverflowCounter | None = None,
    keep_intermediates: bool = False,
) -> TriggerOutputs:
    """R1, R2 (mantissas; ``.r1_float``), region bits (N, 4) A,B,C,D and the trigger bit of hardware words (N, 57).

    ``counter`` collects overflows (values outside a target type: wrapped or saturated)
    per cast: ``hardware_input``, ``input``, ``{layer}.product|accum|result``,
    ``{layer}_{activation}``, ``{ae}.difference|square|score``.
    """
    return TriggerEmulator(spec, weights)(words, counter, keep_intermediates)


def place_thresholds(
    spec: FirmwareSpec,
    weights: dict[str, np.ndarray],
    background_words: np.ndarray,
    background_weights: np.ndarray | None,
    eps_b: float,
) -> FirmwareSpec:
    """The spec with ABCD thresholds on the exact quantized background scores.

    ``offline.ad.abcd.thresholds``: x keeps sqrt(eps_b) of the weighted background in R1 > x,
    then y is set among R1 > x so that region A keeps eps_b. Both are score values, hence on
    the score grids (snapped down to the grid for safety). ``fire_on`` is kept.
    """
    from offline.ad.abcd import thresholds

    if not 0 < eps_b < 1:
        raise ValueError(f"eps_b must be in (0, 1), got {eps_b}")
    out = emulate_trigger(spec, weights, background_words)
    if len(out) == 0:
        raise ValueError("no background events to place the thresholds on")
    x, y = thresholds(out.r1_float, out.r2_float, background_weights, eps_b)
    t = []
    for value, ae in ((x, 0), (y, 1)):
        st = spec.autoencoders[ae].score.score
        t.append(math.ldexp(math.floor(math.ldexp(value, st.fractional)), -st.fractional))
    trigger = dataclasses.replace(spec.trigger, threshold_r1=t[0], threshold_r2=t[1])
    return dataclasses.replace(spec, trigger=trigger)
