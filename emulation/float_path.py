"""The same integer arithmetic, carried in float64: the emulator's fast path.

Why: a dense layer's exact sum is a float64 BLAS product (integers below 2**53 are
exact in any summation order). Keeping the mantissas in float64 between layers saves
the int64 <-> float64 conversions around every product, about a third of the time.
Every operation here stays exact: mantissas are integers below 2**52 (types of at
most 52 bits), scaling by powers of two is exact, rounding ``m * 2**-sh`` with
``floor``/``ceil``/``rint`` after adding +-1/2 is exact while ``|m| + 2**(sh-1) < 2**53``
(so shifts are at most 52), and ``fmod`` by a power of two is exact.

``project_plan`` says whether a whole project can run this way (every dense layer has
accumulators that the types prove exact, every type <= 52 bits); the integer path in
``emulation.network`` handles everything else and is the reference these equal
(tests/test_emulation_network.py).
"""

from __future__ import annotations

import numpy as np

from emulation.fixed import FixedType, OverflowCounter, _ap_int_from_double, _bounds
from emulation.hls_project import DenseLayer, HLSProject

__all__ = ["cast_float", "from_float_exact", "project_plan", "run_layers_float"]

MAX_FLOAT_WIDTH = 52


def _contained(src: FixedType, dst: FixedType) -> int | None:
    """Left shift that moves src exactly into dst, or None if a cast could round or overflow."""
    shift = dst.fractional - src.fractional
    if shift >= 0 and (src.min_int << shift) >= dst.min_int and (src.max_int << shift) <= dst.max_int:
        return shift
    return None


def cast_float(
    y: np.ndarray, src: FixedType, dst: FixedType, counter: OverflowCounter | None, name: str
) -> np.ndarray:
    """``fixed.cast`` on float64 mantissas (may reuse ``y``'s memory)."""
    n = y.size
    if dst.is_integer and src.signed and src.integer <= 0:  # see fixed._int_source
        y = np.where(y < 0, -(2.0**src.fractional), y)
    shift = _contained(src, dst)
    if shift is not None:
        if counter is not None:
            counter.record(name, 0, n)
        if shift:
            y *= 2.0**shift
        return y
    sh = src.fractional - dst.fractional
    if sh > 0:
        y *= 2.0**-sh
        mode = dst.rounding
        if mode == "AP_TRN":
            np.floor(y, out=y)
        elif mode == "AP_RND_CONV":
            np.rint(y, out=y)
        elif mode == "AP_TRN_ZERO":
            np.trunc(y, out=y)
        elif mode == "AP_RND":
            y += 0.5
            np.floor(y, out=y)
        elif mode == "AP_RND_MIN_INF":
            y -= 0.5
            np.ceil(y, out=y)
        else:
            neg = y < 0
            up = np.floor(y + 0.5)  # ties up
            down = np.ceil(y - 0.5)  # ties down
            # RND_ZERO: ties towards zero (up for negatives); RND_INF: away from zero.
            y = np.where(neg, up, down) if mode == "AP_RND_ZERO" else np.where(neg, down, up)
    elif sh < 0:
        y *= 2.0**-sh
    return _overflow_float(y, dst, counter, name)


def _overflow_float(y: np.ndarray, dst: FixedType, counter: OverflowCounter | None, name: str) -> np.ndarray:
    n = y.size
    lo, hi = _bounds(dst)
    if n == 0 or (y.min() >= lo and y.max() <= hi):
        if counter is not None:
            counter.record(name, 0, n)
        return y
    bad = (y < lo) | (y > hi)
    if counter is not None:
        counter.record(name, int(np.count_nonzero(bad)), n)
    if dst.overflow == "AP_WRAP":
        span = 2.0**dst.width
        y -= lo
        np.fmod(y, span, out=y)
        y += np.where(y < 0, span, 0.0)
        y += lo
        return y
    if dst.overflow == "AP_SAT_ZERO":
        y[bad] = 0.0
        return y
    return np.clip(y, lo, hi, out=y)


def _float_ok(src: FixedType, dst: FixedType) -> bool:
    """Whether cast_float is exact for this cast (see the module docstring)."""
    if _contained(src, dst) is not None:
        return True
    sh = src.fractional - dst.fractional
    return sh <= MAX_FLOAT_WIDTH if sh > 0 else src.width - 1 - sh <= MAX_FLOAT_WIDTH


def from_float_exact(x: np.ndarray, dst: FixedType, counter: OverflowCounter | None, name: str) -> np.ndarray | None:
    """float64 mantissas of ``dst(double(x))``, or None when some value needs the exact integer path."""
    if dst.rounding not in ("AP_TRN", "AP_RND_CONV", "AP_TRN_ZERO"):
        return None  # the other modes need exact tie tests on arbitrary doubles: integer path
    if dst.is_integer:
        x = _ap_int_from_double(x)
    with np.errstate(over="ignore"):
        y = x * 2.0**dst.fractional  # exact unless it overflows or (F < 0) underflows
    if y.size and not (max(y.max(), -y.min()) < 2.0**51 and (dst.fractional >= 0 or np.abs(y).min() >= 2.0**-1000)):
        return None
    {"AP_TRN": np.floor, "AP_RND_CONV": np.rint, "AP_TRN_ZERO": np.trunc}[dst.rounding](y, out=y)
    return _overflow_float(y, dst, counter, name)


def project_plan(project: HLSProject) -> list | None:
    """Per layer, what the float path runs; None if the project needs the integer path."""
    from emulation.network import _static_plan

    types = [project.input_type, project.output_type]
    for layer in project.layers:
        types.append(layer.result_type)
        if isinstance(layer, DenseLayer):
            types += [layer.accum_type, layer.weight_type, layer.bias_type]
    if any(x.width > MAX_FLOAT_WIDTH for x in types):
        return None
    plans: list = []
    t = project.input_type
    for layer in project.layers:
        if isinstance(layer, DenseLayer):
            plan = _static_plan(t, layer.weight, layer.weight_type, layer.bias, layer.bias_type, layer.accum_type)
            if plan is None or not _float_ok(layer.accum_type, layer.result_type):
                return None
            plans.append(plan)
        else:
            if not _float_ok(t, layer.result_type):
                return None
            plans.append(None)
        t = layer.result_type
    return plans


def run_layers_float(
    project: HLSProject, plans: list, y: np.ndarray, counter: OverflowCounter | None
) -> np.ndarray:
    """``network.run_layers`` on float64 mantissas, for a project ``project_plan`` accepted."""
    t = project.input_type
    for layer, plan in zip(project.layers, plans, strict=True):
        if isinstance(layer, DenseLayer):
            y = y @ plan.weight
            if plan.scale != 1.0:
                y *= plan.scale
            y += plan.bias
            if counter is not None:
                n_events = len(y)
                counter.record(f"{layer.name}.bias", 0, layer.n_out)
                counter.record(f"{layer.name}.product", 0, n_events * layer.n_in * layer.n_out)
                counter.record(f"{layer.name}.accum", 0, n_events * layer.n_out)
            y = cast_float(y, layer.accum_type, layer.result_type, counter, f"{layer.name}.result")
        elif layer.kind == "relu":
            y = cast_float(np.maximum(y, 0.0), t, layer.result_type, counter, layer.name)
        else:
            y = cast_float(y.copy(), t, layer.result_type, counter, layer.name)
        t = layer.result_type
    return y
