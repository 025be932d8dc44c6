"""The FirmwareSpec: the single source of truth for the trigger's fixed-point behaviour.

One JSON file (``spec.json``, version 2) beside the quantized weights (``weights.safetensors``,
float32 values that lie exactly on their declared grids, keys ``ae{i}.layers.{k}.weight``
/ ``.bias`` with torch's (out, in) layout, ``i`` the score, ``k`` the dense node). It holds:

- ``hardware_input``: type of the integer L1 words (pT, eta, phi) entering the trigger;
- ``preprocessing``: the per-feature ``(x - offset) >> shift`` (offline.preprocess);
- ``input``: type the preprocessed features are cast to, the networks' input;
- ``scores``: two (R1, R2), each ``{name, nodes}``: dense nodes (weight, bias, accumulator,
  result types, activation and its result type) from the 57 inputs, then one reduction node:
  ``reconstruction`` (``difference = x - xhat``, ``square = difference**2``, ``score`` = sum of
  squares over ``outputs``, each cast to its own type; the network is an autoencoder) or
  ``latent_norm`` (``square = mu**2``, ``score`` = their sum over ``outputs``; the network is an
  encoder whose output is the latent mean mu);
- ``trigger``: thresholds on R1 and R2 and which ABCD regions fire the trigger bit:
  A = R1 > t1 & R2 > t2, B = R1 > t1 & R2 <= t2, C = R1 <= t1 & R2 > t2, D = the rest.

In Python a score is an :class:`AutoencoderSpec` (its dense layers and its :class:`ScoreSpec`,
whose ``kind`` is the reduction) in ``FirmwareSpec.autoencoders``. Version-1 files (two
``autoencoders``, always the reconstruction error) load through :mod:`emulation.spec_v1`.
The derived types (preprocessing, the score's term and sum types) are computed here only.

Score semantics in detail (what ``emulation.trigger`` implements and the firmware must
match): ``difference_j = cast<difference>(x_j - xhat_j)`` from the exact difference (for
``latent_norm`` the term is ``mu_j`` itself), ``square_j = cast<square>(difference_j * difference_j)``, and ``score`` starts at 0 and takes
``score = cast<score>(score + square_j)`` one output at a time in the order of ``outputs``
(``score_t acc; acc += sq``). With the default types (score and square share their fractional
bits, AP_SAT, non-negative terms) this equals ``min(sum_j square_j, max(score))`` in any order.
Zeros in ``weights.safetensors`` are stored as +0.0 (frameworks disagree on the sign of weights
rounded to zero; the same model gives byte-identical files).

``quantize`` writes it (identically from Brevitas and QKeras for the same model),
``firmware`` turns it into the hls4ml config and the HLS wrapper, ``emulation``
executes it; neither re-derives it. Loading validates every field and names the
one that is wrong. It lives here, below ``quantize`` and ``firmware``, so both import it and
the executor directly (``quantize.spec`` re-exports it).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from offline.artifacts import atomic_path, read_json, write_json
from offline.events.schema import N_FEATURES
from offline.preprocess import Preprocessing

SPEC_VERSION = 2
SPEC_FILE = "spec.json"
WEIGHTS_FILE = "weights.safetensors"
ROUNDING_MODES = (
    "AP_TRN",
    "AP_TRN_ZERO",
    "AP_RND",
    "AP_RND_ZERO",
    "AP_RND_MIN_INF",
    "AP_RND_INF",
    "AP_RND_CONV",
)
OVERFLOW_MODES = ("AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM")
ACTIVATIONS = ("relu", "linear")
RECONSTRUCTION = "reconstruction"  # sum of (x - xhat)**2: the network is an autoencoder
LATENT_NORM = (
    "latent_norm"  # sum of mu**2: the network is an encoder whose output is the latent mean
)
SCORE_KINDS = (RECONSTRUCTION, LATENT_NORM)
REGIONS = ("A", "B", "C", "D")
MAX_WIDTH = 1024  # AP_INT_MAX_W, the widest ap_int/ap_fixed ap_types allows by default
# float64 significand: hls4ml carries weights as numpy float64 until it prints them into the
# weight headers, the testbench, tb_data and the C-simulation bridge exchange R1 and R2 as
# doubles, and da4ml traces the firmware (the preprocessing included) in float64; wider
# types would be rounded on the way.
DOUBLE_BITS = 53


class SpecError(ValueError):
    """A FirmwareSpec field is missing, malformed or inconsistent; ``field`` names it."""

    def __init__(self, field_path: str, problem: str) -> None:
        self.field = field_path
        self.problem = problem
        super().__init__(f"FirmwareSpec field {field_path!r}: {problem}")


_TYPE_RE = re.compile(
    r"^\s*ap_(u?)(fixed|int)<\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?(?:,\s*(\w+)\s*)?(?:,\s*(\w+)\s*)?(?:,\s*(\d+)\s*)?>\s*$"
)


@dataclass(frozen=True)
class FixedType:
    """``ap_fixed<width, integer, rounding, overflow>`` (``ap_ufixed`` when unsigned), or, with
    ``is_integer``, ``ap_int<width>`` / ``ap_uint<width>``.

    The integer family is its own kind, not ``ap_fixed<W,W>``: it follows C++ integer
    conversions. From fixed point it truncates toward zero and wraps, so its modes are
    fixed at ``AP_TRN_ZERO``/``AP_WRAP`` (``FixedType.int_type`` builds one); from a double it
    has ap_types' own rule (``emulation.fixed.from_float``).
    """

    width: int
    integer: int
    signed: bool = True
    rounding: str = "AP_TRN"
    overflow: str = "AP_WRAP"
    is_integer: bool = False

    def __post_init__(self) -> None:
        if self.is_integer and self.rounding == "AP_TRN":  # the default: ap_int's own truncation
            object.__setattr__(self, "rounding", "AP_TRN_ZERO")
        self.check()

    @classmethod
    def int_type(cls, width: int, signed: bool = True) -> FixedType:
        """``ap_int<width>`` (``ap_uint<width>`` when unsigned)."""
        return cls(width, width, signed, is_integer=True)

    def check(self, where: str = "type") -> None:
        if not isinstance(self.width, int) or not 1 <= self.width <= MAX_WIDTH:
            raise SpecError(where, f"width {self.width!r} must be an integer in 1..{MAX_WIDTH}")
        if not isinstance(self.integer, int):
            raise SpecError(where, f"integer bits {self.integer!r} must be an integer")
        if self.rounding not in ROUNDING_MODES:
            raise SpecError(
                where, f"rounding {self.rounding!r} is not one of {', '.join(ROUNDING_MODES)}"
            )
        if self.overflow not in OVERFLOW_MODES:
            raise SpecError(
                where, f"overflow {self.overflow!r} is not one of {', '.join(OVERFLOW_MODES)}"
            )
        if self.is_integer and (self.integer, self.rounding, self.overflow) != (
            self.width,
            "AP_TRN_ZERO",
            "AP_WRAP",
        ):
            raise SpecError(
                where,
                "ap_int/ap_uint have integer bits = width and no quantisation or overflow modes",
            )

    @property
    def fractional(self) -> int:
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        return math.ldexp(1.0, -self.fractional)

    @property
    def min_int(self) -> int:
        """Smallest mantissa (value * 2**fractional)."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min_value(self) -> float:
        return math.ldexp(self.min_int, -self.fractional)

    @property
    def max_value(self) -> float:
        return math.ldexp(self.max_int, -self.fractional)

    def on_grid(self, values: np.ndarray) -> np.ndarray:
        """True where a value is exactly representable in this type."""
        mant = np.asarray(values, dtype=np.float64) * math.ldexp(1.0, self.fractional)
        return (mant == np.round(mant)) & (mant >= self.min_int) & (mant <= self.max_int)

    def __str__(self) -> str:
        if self.is_integer:
            return f"ap_{'' if self.signed else 'u'}int<{self.width}>"
        base = f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer}"
        if self.rounding != "AP_TRN" or self.overflow != "AP_WRAP":
            base += f",{self.rounding}"
            if self.overflow != "AP_WRAP":
                base += f",{self.overflow}"
        return base + ">"

    @classmethod
    def parse(cls, text: str, where: str = "type") -> FixedType:
        """Parse ``ap_fixed<W,I[,Q[,O[,N]]]>``, ``ap_ufixed<...>``, ``ap_int<W>``, ``ap_uint<W>``.

        The saturation bit count ``N`` must be 0 (the only one hls4ml writes).
        """
        m = _TYPE_RE.match(str(text))
        if m is None:
            raise SpecError(where, f"cannot parse fixed-point type {text!r}")
        unsigned, kind, width, integer, rounding, overflow, n_bits = m.groups()
        width = int(width)
        try:
            if kind == "int":
                if (integer, rounding, overflow, n_bits) != (None, None, None, None):
                    raise SpecError(
                        where, f"{text!r}: ap_int/ap_uint take one parameter, the width"
                    )
                return cls.int_type(width, not unsigned)
            if integer is None:
                raise SpecError(where, f"{text!r}: ap_fixed needs width and integer bits")
            if n_bits not in (None, "0"):
                raise SpecError(
                    where, f"{text!r}: saturation bits N={n_bits} are not supported (only 0)"
                )
            return cls(
                width, int(integer), not unsigned, rounding or "AP_TRN", overflow or "AP_WRAP"
            )
        except SpecError as err:  # name the field, not the generic "type"
            raise SpecError(where, err.problem) from None


def product_type(a: FixedType, b: FixedType) -> FixedType:
    """Result type of ``a * b`` in ap_fixed (``RType::mult``): exact, ``ap_fixed<Wa+Wb, Ia+Ib>``."""
    return FixedType(a.width + b.width, a.integer + b.integer, a.signed or b.signed)


def sum_type(term: FixedType, n_terms: int) -> FixedType:
    """Exact type of a sum of ``n_terms`` values of ``term``: ceil(log2 n) extra integer bits."""
    extra = math.ceil(math.log2(n_terms)) if n_terms > 1 else 0
    return FixedType(term.width + extra, term.integer + extra, term.signed)


def exact_accumulator(
    weight: FixedType, layer_input: FixedType, n_in: int, bias: FixedType | None
) -> FixedType:
    """Smallest type that holds every weighted sum (+ bias) of a dense layer without rounding or overflow."""
    acc = sum_type(product_type(weight, layer_input), n_in)
    if bias is not None:
        frac = max(acc.fractional, bias.fractional)
        integer = max(acc.integer, bias.integer + (0 if bias.signed or acc.signed else 1)) + 1
        acc = FixedType(frac + integer, integer, True)
    return FixedType(acc.width, acc.integer, True)


@dataclass(frozen=True)
class DenseSpec:
    """One dense layer: ``result = cast(accumulator(sum_i w_ij x_i + b_j))``, then the activation."""

    name: str
    n_in: int
    n_out: int
    weight: FixedType
    bias: FixedType | None
    accumulator: FixedType
    result: FixedType
    activation: str
    activation_result: FixedType


@dataclass(frozen=True)
class ScoreSpec:
    """The score reduction of a network's output, each step cast to its own type.

    ``reconstruction``: R = sum over ``outputs`` of cast(square, cast(difference, x - xhat)**2)
    (``outputs`` index the 57 features). ``latent_norm``: R = sum over ``outputs`` of
    cast(square, mu**2), mu the network's output (``outputs`` index it; no ``difference``).
    Either sum is taken in ``score`` one term at a time (see :func:`score_sum_type`).
    """

    difference: FixedType | None
    square: FixedType
    score: FixedType
    outputs: tuple[int, ...] = tuple(range(N_FEATURES))
    kind: str = RECONSTRUCTION


@dataclass(frozen=True)
class AutoencoderSpec:
    """One score's network (dense layers from the 57 inputs) and its reduction: an autoencoder
    for ``reconstruction``, an encoder (its output the latent mean) for ``latent_norm``."""

    name: str
    layers: tuple[DenseSpec, ...]
    score: ScoreSpec

    @property
    def output_type(self) -> FixedType:
        """Type of the network's output (xhat or mu): the last layer's activation result."""
        return self.layers[-1].activation_result

    @property
    def term_type(self) -> FixedType:
        """Type of the values the score squares: ``difference`` or the latent mean's own type."""
        if self.score.kind == LATENT_NORM:
            return self.output_type
        assert self.score.difference is not None  # validated: reconstruction has a difference
        return self.score.difference


@dataclass(frozen=True)
class TriggerSpec:
    """Thresholds (values of the score types) and the regions whose events fire the trigger bit."""

    threshold_r1: float
    threshold_r2: float
    fire_on: tuple[str, ...] = ("A",)


@dataclass(frozen=True)
class FirmwareSpec:
    hardware_input: FixedType
    preprocessing: Preprocessing
    input: FixedType
    autoencoders: tuple[AutoencoderSpec, AutoencoderSpec]
    trigger: TriggerSpec
    version: int = SPEC_VERSION
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    # ---- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The version-2 JSON form (:func:`emulation.spec_json.spec_to_dict`)."""
        from emulation.spec_json import spec_to_dict

        return spec_to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> FirmwareSpec:
        """Read a version-2 dict, or a version-1 one through :func:`emulation.spec_v1.v1_to_v2`
        (:func:`emulation.spec_json.spec_from_dict`)."""
        from emulation.spec_json import spec_from_dict

        return spec_from_dict(data)

    def save(self, directory: str | os.PathLike[str], weights: dict[str, np.ndarray]) -> Path:
        """Write ``spec.json`` and ``weights.safetensors`` into ``directory`` (checked first)."""
        from safetensors.numpy import save_file

        check_weights(self, weights)
        directory = Path(directory)
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            # + 0.0 turns -0.0 into 0.0: frameworks differ in the sign of weights rounded to zero,
            # and the same model must give byte-identical files
            save_file(
                {
                    k: np.ascontiguousarray(v, dtype=np.float32) + np.float32(0.0)
                    for k, v in weights.items()
                },
                str(tmp),
            )
        write_json(directory / SPEC_FILE, self.to_dict())
        return directory / SPEC_FILE


def spec_path(path: str | os.PathLike[str]) -> Path:
    """Accept a spec file or the directory holding ``spec.json``."""
    path = Path(path)
    return path / SPEC_FILE if path.is_dir() else path


def load_spec(path: str | os.PathLike[str]) -> FirmwareSpec:
    """Load and validate a FirmwareSpec (a ``spec.json`` or its directory)."""
    path = spec_path(path)
    data = read_json(path, "FirmwareSpec file")
    try:
        return FirmwareSpec.from_dict(data)
    except SpecError as err:
        raise SpecError(err.field, f"{err.problem} (in {path})") from None


def load_weights(spec: FirmwareSpec, path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The quantized weights beside a spec, checked against its layer shapes and grids."""
    from safetensors.numpy import load_file

    wpath = spec_path(path).parent / WEIGHTS_FILE
    if not wpath.exists():
        raise ValueError(f"{wpath}: weights file does not exist")
    try:
        weights = load_file(str(wpath))
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{wpath}: cannot read weights (corrupt?): {err}") from None
    try:
        check_weights(spec, weights)
    except SpecError:
        raise
    except ValueError as err:
        raise ValueError(f"{wpath}: {err}") from None
    return {k: v.astype(np.float64) for k, v in weights.items()}


def weight_key(ae: int, layer: int, kind: str) -> str:
    return f"ae{ae + 1}.layers.{layer}.{kind}"


def check_weights(spec: FirmwareSpec, weights: dict[str, np.ndarray]) -> None:
    """Every weight/bias present, of the layer's shape, and exactly on its declared grid."""
    for i, ae in enumerate(spec.autoencoders):
        for k, d in enumerate(ae.layers):
            for kind, ftype, shape in (
                ("weight", d.weight, (d.n_out, d.n_in)),
                ("bias", d.bias, (d.n_out,)),
            ):
                key = weight_key(i, k, kind)
                if ftype is None:
                    if key in weights:
                        raise SpecError(
                            f"scores[{i}].nodes[{k}].bias", "is null but weights hold a bias"
                        )
                    continue
                if key not in weights:
                    raise ValueError(f"weights: missing {key!r}")
                arr = np.asarray(weights[key])
                if arr.shape != shape:
                    raise ValueError(f"weights: {key!r} has shape {arr.shape}, spec says {shape}")
                off = ~ftype.on_grid(arr)
                if off.any():
                    raise ValueError(
                        f"weights: {off.sum()} values of {key!r} are not on the grid of {ftype}"
                        f" (first: {arr[off].flat[0]!r})"
                    )


# ---- derived types and validation ---------------------------------------------


def preprocess_type(spec: FirmwareSpec) -> FixedType:
    """Exact type of ``(word - offset) >> shift`` (the firmware wrapper's ``pre_t``, the emulator's
    preprocessing stage) before the cast to the input type; a SpecError on ``preprocessing`` when it
    is wider than ``DOUBLE_BITS`` bits."""
    pre = spec.preprocessing
    hw = spec.hardware_input
    # value * 2**-shift keeps the word's own fractional bits too
    frac = max(0, max(pre.shifts) + max(hw.fractional, 0))
    left = max(0, *(-s for s in pre.shifts))
    span = max(abs(o) for o in pre.offsets)
    # word - offset needs one bit more than the wider of the word and the offset
    int_bits = max(hw.integer + (0 if hw.signed else 1), span.bit_length() + 1) + 1 + left
    if int_bits + frac > DOUBLE_BITS:
        raise SpecError(
            "preprocessing",
            f"offsets up to {span} and shifts {min(pre.shifts)}..{max(pre.shifts)} of {hw} words need "
            f"{int_bits + frac} bits, more than the {DOUBLE_BITS} the firmware trace holds exactly",
        )
    return FixedType(int_bits + frac, int_bits, True)


def require_reconstruction(spec: FirmwareSpec, what: str) -> None:
    """A ValueError naming the first ``latent_norm`` score, for code that trains autoencoder pairs only."""
    for i, ae in enumerate(spec.autoencoders):
        if ae.score.kind != RECONSTRUCTION:
            raise ValueError(
                f"{what} supports reconstruction scores only; FirmwareSpec score {i + 1} "
                f"({ae.name!r}) is {ae.score.kind}"
            )


def squares_non_negative(square: FixedType) -> bool:
    """Whether every cast of a square (>= 0) to ``square`` stays >= 0: unsigned, or saturating."""
    return not square.signed or square.overflow in ("AP_SAT", "AP_SAT_SYM", "AP_SAT_ZERO")


def sums_in_one_go(s: ScoreSpec) -> bool:
    """Whether the exact sum of the squares cast once to ``score`` equals the one-by-one additions
    (see :func:`score_sum_type`)."""
    wraps = s.score.overflow == "AP_WRAP"
    saturates = s.score.overflow in ("AP_SAT", "AP_SAT_SYM") and squares_non_negative(s.square)
    return s.score.fractional >= s.square.fractional and (wraps or saturates)


def score_sum_type(s: ScoreSpec) -> FixedType:
    """Type the squares are added in: the exact sum (cast once to ``score``) where that equals
    the spec's one-by-one additions in ``score``, else ``score`` itself (the literal chain).

    Exact and one-by-one agree when no addition rounds (score.fractional >= square.fractional)
    and either ``score`` wraps (arithmetic mod 2**W) or it saturates (AP_SAT, AP_SAT_SYM) and the
    squares are never negative (a saturated partial sum stays saturated). The firmware wrapper
    adds in this type (an adder tree instead of a chain) and the emulator sums in one go.
    """
    if not sums_in_one_go(s):
        return s.score
    exact = sum_type(s.square, len(s.outputs))
    extra = s.score.fractional - s.square.fractional
    return FixedType(exact.width + extra, exact.integer, exact.signed)


def _validate_network(i: int, ae: AutoencoderSpec, names: set[str]) -> None:
    where = f"scores[{i}].nodes"
    if not ae.layers:
        raise SpecError(where, "has no dense node before the reduction")
    width = N_FEATURES
    for k, d in enumerate(ae.layers):
        lw = f"{where}[{k}]"
        if d.name in names:
            raise SpecError(
                f"{lw}.name", f"{d.name!r} is used twice (hls4ml layer names must be unique)"
            )
        names.add(d.name)
        if d.n_in != width:
            raise SpecError(f"{lw}.n_in", f"is {d.n_in} but the previous layer gives {width}")
        if d.n_out < 1:
            raise SpecError(f"{lw}.n_out", f"must be positive, got {d.n_out}")
        if d.activation not in ACTIVATIONS:
            raise SpecError(
                f"{lw}.activation", f"{d.activation!r} is not one of {', '.join(ACTIVATIONS)}"
            )
        width = d.n_out
    s = ae.score
    rw = f"{where}[{len(ae.layers)}]"
    if s.kind not in SCORE_KINDS:
        raise SpecError(f"{rw}.op", f"{s.kind!r} is not one of {', '.join(SCORE_KINDS)}")
    if (s.difference is None) != (s.kind == LATENT_NORM):
        raise SpecError(
            f"{rw}.difference",
            f"a {s.kind} score {'has no' if s.difference is not None else 'needs a'} difference type",
        )
    if s.kind == RECONSTRUCTION and width != N_FEATURES:
        raise SpecError(
            f"{where}[{len(ae.layers) - 1}].n_out",
            f"is {width}, a reconstruction's output must be {N_FEATURES}",
        )
    valid = all(
        isinstance(o, int) and not isinstance(o, bool) and 0 <= o < width for o in s.outputs
    )
    if not s.outputs or not valid or len(set(s.outputs)) != len(s.outputs):
        raise SpecError(f"{rw}.outputs", f"must be distinct output indices in 0..{width - 1}")


def _validate(spec: FirmwareSpec) -> None:
    """Everything the emulator and the firmware both need; neither accepts a spec the other rejects."""
    if spec.version != SPEC_VERSION:
        raise SpecError("version", f"{spec.version} is not {SPEC_VERSION}")
    if spec.input.fractional < 0:
        raise SpecError(
            "input", f"{spec.input} has no fractional bits for the preprocessing shifts"
        )
    if spec.input.integer < 1 or not spec.input.signed:
        # preprocessed features are centred on zero: the input needs a sign bit
        raise SpecError(
            "input", f"{spec.input} must be signed with at least 1 integer bit (the sign)"
        )
    preprocess_type(spec)
    names: set[str] = set()
    for i, ae in enumerate(spec.autoencoders):
        _validate_network(i, ae, names)
    t = spec.trigger
    for key, value, score in (
        ("threshold_r1", t.threshold_r1, spec.autoencoders[0].score.score),
        ("threshold_r2", t.threshold_r2, spec.autoencoders[1].score.score),
    ):
        if not (isinstance(value, float) and math.isfinite(value)) and not (
            isinstance(value, int) and abs(value) < 2**MAX_WIDTH
        ):
            raise SpecError(
                f"trigger.{key}", f"must be a finite number of the score type, got {value!r}"
            )
        if not score.on_grid(np.array([value]))[0]:
            raise SpecError(
                f"trigger.{key}", f"{value!r} is not representable in the score type {score}"
            )
    if not t.fire_on or any(r not in REGIONS for r in t.fire_on):
        raise SpecError(
            "trigger.fire_on",
            f"must list regions among {', '.join(REGIONS)}, got {list(t.fire_on)}",
        )
