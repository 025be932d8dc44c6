"""emulation.fixed agrees bit for bit with ap_fixed (hls4ml's ap_types, compiled by g++).

One C++ reference program is generated from the list of cases below, compiled once
(cached in the temp dir by the hash of its source) and fed many vectors per call.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulation.fixed import (
    MAX_WIDTH,
    OVERFLOW_MODES,
    QUANTIZATION_MODES,
    FixedType,
    OverflowCounter,
    add,
    cast,
    from_float,
    multiply,
    plus_type,
    product_type,
    to_float,
)

MODES = list(itertools.product(QUANTIZATION_MODES, OVERFLOW_MODES))
SOURCES = [(16, 6, True), (12, 4, False), (10, 12, True), (24, 10, True), (6, 6, False), (30, 2, True), (9, -2, True)]
TARGETS = [(8, 3, True), (6, 2, False), (10, -2, True), (5, 8, True), (4, 4, False), (1, 1, True), (2, 0, False), (18, 8, True)]


@dataclass(frozen=True)
class Case:
    kind: str  # cast, double, mul, add, mulcast, acc
    a: FixedType | None
    b: FixedType | None
    d: FixedType | None


def _t(shape, q="AP_TRN", o="AP_WRAP") -> FixedType:
    w, i, s = shape
    return FixedType(w, i, s, q, o)


def _supported(src: FixedType, dst: FixedType) -> bool:
    # ap_types asserts ("read bit beyond MSB") when a cast drops more fractional bits than
    # the source has; hls4ml never writes such casts, the emulator defines them exactly.
    return src.fractional - dst.fractional <= src.width


def _cases() -> list[Case]:
    rng = random.Random(6)
    cases = []
    for q, o in MODES:
        while len([c for c in cases if c.kind == "cast" and c.d.rounding == q and c.d.overflow == o]) < 3:
            src, dst = _t(rng.choice(SOURCES)), _t(rng.choice(TARGETS), q, o)
            if _supported(src, dst):
                cases.append(Case("cast", src, None, dst))
        for dst in rng.sample(TARGETS, 3):
            cases.append(Case("double", None, None, _t(dst, q, o)))
        while True:
            a, b = (_t(s) for s in rng.sample(SOURCES, 2))
            dst = _t(rng.choice(TARGETS), q, o)
            if a.width + b.width <= MAX_WIDTH and _supported(product_type(a, b), dst):
                cases.append(Case("mulcast", a, b, dst))
                break
        while True:
            b, dst = _t(rng.choice(SOURCES)), _t(rng.choice(TARGETS), q, o)
            if _supported(plus_type(dst, b), dst):
                cases.append(Case("acc", None, b, dst))
                break
    for a, b in itertools.product(SOURCES, repeat=2):
        if a[0] + b[0] <= MAX_WIDTH:
            cases.append(Case("mul", _t(a), _t(b), None))
        cases.append(Case("add", _t(a), _t(b), None))
    return cases


CASES = _cases()


def _cpp_type(t: FixedType) -> str:
    return f"ap_{'' if t.signed else 'u'}fixed<{t.width},{t.integer},{t.rounding},{t.overflow},0>"


def _cpp_source() -> str:
    lines = [
        '#include "ap_fixed.h"',
        "#include <cstdio>",
        "#include <cstdlib>",
        "typedef long long ll;",
        "template<class A, class D> ll do_cast(ll a){ A x; x.V = a; D d = x; return (ll)d.V; }",
        "template<class D> ll do_double(double v){ D d = v; return (ll)d.V; }",
        "template<class A, class B> ll do_mul(ll a, ll b){ A x; x.V = a; B y; y.V = b; return (ll)(x * y).V; }",
        "template<class A, class B> ll do_add(ll a, ll b){ A x; x.V = a; B y; y.V = b; return (ll)(x + y).V; }",
        "template<class A, class B, class D> ll do_mulcast(ll a, ll b){ A x; x.V = a; B y; y.V = b; D d = x * y; return (ll)d.V; }",
        "template<class D, class B> ll do_acc(ll a, ll b){ D d; d.V = a; B y; y.V = b; d += y; return (ll)d.V; }",
        "int main(int argc, char** argv){",
        "  FILE* f = fopen(argv[1], \"r\"); int c; char sa[64], sb[64];",
        "  while (fscanf(f, \"%d %63s %63s\", &c, sa, sb) == 3) {",
        "    ll a = strtoll(sa, 0, 10), b = strtoll(sb, 0, 10), r = 0;",
        "    switch (c) {",
    ]
    for n, case in enumerate(CASES):
        a = _cpp_type(case.a) if case.a else ""
        b = _cpp_type(case.b) if case.b else ""
        d = _cpp_type(case.d) if case.d else ""
        call = {
            "cast": f"do_cast<{a}, {d} >(a)",
            "double": f"do_double<{d} >(strtod(sa, 0))",
            "mul": f"do_mul<{a}, {b} >(a, b)",
            "add": f"do_add<{a}, {b} >(a, b)",
            "mulcast": f"do_mulcast<{a}, {b}, {d} >(a, b)",
            "acc": f"do_acc<{d}, {b} >(a, b)",
        }[case.kind]
        lines.append(f"      case {n}: r = {call}; break;")
    lines += ["    }", '    printf("%lld\\n", r);', "  }", "  return 0;", "}"]
    return "\n".join(lines) + "\n"


def _ap_types_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("hls4ml")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "templates" / "vivado" / "ap_types"


@pytest.fixture(scope="session")
def ap_reference() -> Path:
    if shutil.which("g++") is None:
        pytest.skip("needs g++")
    source = _cpp_source()
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"l1ad_apref_{digest}"
    binary = folder / "apref"
    if not binary.exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "apref.cpp").write_text(source)
        tmp = folder / f"apref.{random.randrange(1 << 30)}"
        subprocess.run(
            ["g++", "-O0", "-std=c++14", f"-I{_ap_types_dir()}", str(folder / "apref.cpp"), "-o", str(tmp)],
            check=True,
        )
        tmp.replace(binary)
    return binary


def _run(binary: Path, rows: list[tuple[int, str, str]]) -> np.ndarray:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(f"{c} {a} {b}\n" for c, a, b in rows))
        path = f.name
    try:
        out = subprocess.run([str(binary), path], check=True, capture_output=True, text=True).stdout
    finally:
        Path(path).unlink()
    return np.array([int(v) for v in out.split()], dtype=np.int64)


def _mantissas(t: FixedType) -> st.SearchStrategy[int]:
    lo, hi = t.min_int, t.max_int
    return st.one_of(st.integers(lo, hi), st.sampled_from(sorted({lo, hi, 0, min(hi, 1), max(lo, -1)})))


def _doubles(t: FixedType) -> st.SearchStrategy[float]:
    # Values on, near and halfway between grid points, beyond the range, and anything at all.
    grid = st.builds(
        lambda k, off: (k + off) * t.lsb,
        st.integers(t.min_int - 4, t.max_int + 4),
        st.sampled_from([0.0, 0.5, -0.5, 0.25, 0.75, 1e-9, -1e-9, 0.5 + 1e-12, 0.5 - 1e-12]),
    )
    anything = st.floats(allow_nan=False, allow_infinity=False)
    return st.one_of(grid, anything, st.floats(-1e-300, 1e-300))


def _vector(case_ids: list[int]):
    @st.composite
    def draw(data):
        n = data(st.sampled_from(case_ids))
        case = CASES[n]
        if case.kind == "double":
            return n, data(_doubles(case.d)), 0
        if case.kind == "acc":
            return n, data(_mantissas(case.d)), data(_mantissas(case.b))
        a = data(_mantissas(case.a))
        b = data(_mantissas(case.b)) if case.b else 0
        return n, a, b

    return draw()


def _emulate(case: Case, a, b) -> np.ndarray:
    if case.kind == "cast":
        return cast(a, case.a.fractional, case.d)
    if case.kind == "double":
        return from_float(a, case.d)
    if case.kind == "mul":
        return multiply(a, case.a, b, case.b)[0]
    if case.kind == "add":
        return add(a, case.a, b, case.b)[0]
    if case.kind == "mulcast":
        m, t = multiply(a, case.a, b, case.b)
        return cast(m, t.fractional, case.d)
    m, t = add(a, case.d, b, case.b)
    return cast(m, t.fractional, case.d)


def _check(binary: Path, vectors) -> None:
    rows = [(n, float(a).hex() if CASES[n].kind == "double" else str(a), str(b)) for n, a, b in vectors]
    expected = _run(binary, rows)
    for n in {v[0] for v in vectors}:
        sel = [i for i, v in enumerate(vectors) if v[0] == n]
        case = CASES[n]
        dtype = np.float64 if case.kind == "double" else np.int64
        a = np.array([vectors[i][1] for i in sel], dtype=dtype)
        b = np.array([vectors[i][2] for i in sel], dtype=np.int64)
        got = _emulate(case, a, b)
        want = expected[sel]
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (
            f"{case.kind} {case.a} {case.b} -> {case.d}: input {a[bad[0]]!r}, {b[bad[0]]}: "
            f"emulated {got[bad[0]]}, ap_fixed {want[bad[0]]}"
        )


@pytest.mark.hls
@pytest.mark.parametrize(("rounding", "overflow"), MODES)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_casts_and_double_conversion_match_ap_fixed_for_every_mode(ap_reference, rounding, overflow, data):
    ids = [n for n, c in enumerate(CASES) if c.d is not None and (c.d.rounding, c.d.overflow) == (rounding, overflow)]
    vectors = data.draw(st.lists(_vector(ids), min_size=1, max_size=150))
    _check(ap_reference, vectors)


@pytest.mark.hls
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_exact_products_and_sums_match_ap_fixed_result_types(ap_reference, data):
    ids = [n for n, c in enumerate(CASES) if c.kind in ("mul", "add")]
    vectors = data.draw(st.lists(_vector(ids), min_size=1, max_size=200))
    _check(ap_reference, vectors)


@pytest.mark.hls
def test_exhaustive_small_casts_match_ap_fixed(ap_reference):
    # Every source mantissa of the narrow cast cases: ties and boundaries all hit.
    vectors = []
    for n, case in enumerate(CASES):
        if case.kind == "cast" and case.a.width <= 12:
            vectors += [(n, m, 0) for m in range(case.a.min_int, case.a.max_int + 1)]
    assert len(vectors) > 1000
    _check(ap_reference, vectors)


def test_types_parse_format_and_widths():
    t = FixedType.parse("ap_ufixed<8,3,AP_RND_CONV,AP_SAT,0>")
    assert (t.width, t.integer, t.signed, t.rounding, t.overflow) == (8, 3, False, "AP_RND_CONV", "AP_SAT")
    assert FixedType.parse(str(t)) == t
    assert FixedType.parse("ap_int<6>") == FixedType(6, 6, True)
    assert product_type(FixedType(8, 3), FixedType(6, 1, False)) == FixedType(14, 4, True)
    assert plus_type(FixedType(8, 3, False), FixedType(6, 1)) == FixedType(10, 5, True)
    with pytest.raises(ValueError, match="at most 61 bits"):
        cast(np.ones(2, np.int64), 0, FixedType(64, 10))
    with pytest.raises(ValueError, match="width"):
        multiply(np.ones(2, np.int64), FixedType(40, 10), np.ones(2, np.int64), FixedType(30, 10))
    with pytest.raises(ValueError, match="rounding"):
        FixedType(8, 3, True, "AP_ROUND")
    with pytest.raises(ValueError, match="NaN"):
        from_float(np.array([np.nan]), FixedType(8, 3))


def test_overflow_counter_counts_saturated_values_per_name():
    counter = OverflowCounter()
    t = FixedType(8, 3, True, "AP_TRN", "AP_SAT")
    m = from_float(np.array([0.5, 5.0, -7.0, 3.96875]), t, counter, "layer1")
    assert to_float(m, t).tolist() == [0.5, t.max_value, t.min_value, 3.96875]
    cast(np.array([1, 2, 3]), 0, t, counter, "layer2")
    assert counter.overflows("layer1") == 2 and counter.overflows("layer2") == 0
    assert counter.total == 2
    table = counter.report()
    assert table.set_index("name").loc["layer1", "values"] == 4


def _reference_round(num: int, den: int, mode: str) -> int:
    """num/den rounded with an ap_fixed quantization mode, by exact rational arithmetic."""
    from fractions import Fraction

    q = Fraction(num, den)
    fl = math.floor(q)
    rem = q - fl
    half = Fraction(1, 2)
    if mode == "AP_TRN":
        return fl
    if mode == "AP_TRN_ZERO":
        return math.trunc(q)
    if rem != half:
        return fl + (rem > half)
    return {
        "AP_RND": fl + 1,
        "AP_RND_ZERO": fl if q > 0 else fl + 1,
        "AP_RND_MIN_INF": fl,
        "AP_RND_INF": fl + 1 if q > 0 else fl,
        "AP_RND_CONV": fl + (fl % 2),
    }[mode]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-(2**20), 2**20), min_size=1, max_size=20),
    st.integers(0, 6),
    st.sampled_from(["AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV"]),
    st.sampled_from(["AP_WRAP", "AP_SAT", "AP_SAT_SYM", "AP_SAT_ZERO"]),
    st.booleans(),
)
def test_cast_matches_exact_rational_rounding_and_overflow_without_a_compiler(mants, shift, rounding, overflow, signed):
    # the g++-free check of cast (the ap_fixed comparisons above need the hls marker)
    t = FixedType(10, 4, signed, rounding, overflow)
    frac_in = t.fractional + shift
    got = cast(np.array(mants), frac_in, t)
    for m, g in zip(mants, got, strict=True):
        r = _reference_round(m, 2**shift, rounding)
        lo, hi = t.min_int, t.max_int
        if overflow == "AP_WRAP":
            expect = (r - lo) % 2**t.width + lo
        elif overflow == "AP_SAT_ZERO":
            expect = r if lo <= r <= hi else 0
        else:
            expect = min(max(r, -hi if (overflow == "AP_SAT_SYM" and signed) else lo), hi)
        assert g == expect
