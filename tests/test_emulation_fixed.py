"""emulation.fixed agrees bit for bit with ap_fixed/ap_int (hls4ml's ap_types, compiled by g++).

One C++ reference program is generated from the list of cases below (source and target
types drawn at random, with a fixed seed, over every conversion pair: double -> T,
fixed -> fixed, fixed -> int, int -> fixed, int -> int, products and sums, for every
quantisation/overflow mode, 1..24-bit and wider-than-64-bit types), compiled once (cached
in the temp dir by the hash of its source) and fed many hypothesis-drawn values per call.
Mantissas travel as decimal strings, so types of any width are compared exactly.
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
    OVERFLOW_MODES,
    QUANTIZATION_MODES,
    FixedType,
    OverflowCounter,
    add,
    cast,
    from_float,
    mantissa_dtype,
    multiply,
    plus_type,
    product_type,
    to_float,
)

MODES = list(itertools.product(QUANTIZATION_MODES, OVERFLOW_MODES))
FAMILIES = ("fixed", "ufixed", "int", "uint")


@dataclass(frozen=True)
class Case:
    kind: str  # cast, double, mul, add, mulcast, acc
    group: str  # which test draws it: "mode", "int", "wide", "arith"
    a: FixedType | None
    b: FixedType | None
    d: FixedType | None

    @property
    def result(self) -> FixedType:
        if self.kind == "mul":
            return product_type(self.a, self.b)
        if self.kind == "add":
            return plus_type(self.a, self.b)
        return self.d


def _draw_type(
    rng: random.Random, family: str, widths=(1, 24), q="AP_TRN", o="AP_WRAP", min_int=-4
) -> FixedType:
    w = rng.randint(*widths)
    if family in ("int", "uint"):
        return FixedType.int_type(w, family == "int")
    return FixedType(w, rng.randint(min_int, w + 4), family == "fixed", q, o)


def _supported(src: FixedType, dst: FixedType) -> bool:
    # ap_types asserts ("read bit beyond MSB") when a cast drops more fractional bits than
    # the source has; hls4ml never writes such casts, the emulator defines them exactly.
    # Into ap_int, a source with I < 0 reads an uninitialised bit in ap_types: not comparable.
    if dst.is_integer:
        return src.integer >= 0
    return src.fractional - dst.fractional <= src.width


def _cast_case(
    rng, group, src_families, dst_family, widths=(1, 24), q="AP_TRN", o="AP_WRAP"
) -> Case:
    while True:
        src = _draw_type(rng, rng.choice(src_families), widths)
        dst = _draw_type(rng, dst_family, widths, q, o)
        if _supported(src, dst):
            return Case("cast", group, src, None, dst)


def _cases() -> list[Case]:
    rng = random.Random(6)
    cases = []
    for q, o in MODES:
        fixed = ("fixed", "ufixed")
        for _ in range(2):  # fixed -> fixed
            cases.append(_cast_case(rng, "mode", fixed, rng.choice(fixed), q=q, o=o))
        for _ in range(2):  # int -> fixed
            cases.append(_cast_case(rng, "mode", ("int", "uint"), rng.choice(fixed), q=q, o=o))
        for family in fixed:
            cases.append(Case("double", "mode", None, None, _draw_type(rng, family, q=q, o=o)))
        while True:
            a, b = _draw_type(rng, rng.choice(FAMILIES)), _draw_type(rng, rng.choice(FAMILIES))
            dst = _draw_type(rng, rng.choice(fixed), q=q, o=o)
            if _supported(product_type(a, b), dst):
                cases.append(Case("mulcast", "mode", a, b, dst))
                break
        while True:
            b, dst = (
                _draw_type(rng, rng.choice(FAMILIES)),
                _draw_type(rng, rng.choice(fixed), q=q, o=o),
            )
            if _supported(plus_type(dst, b), dst):
                cases.append(Case("acc", "mode", None, b, dst))
                break
    for dst_family in ("int", "uint"):
        for src in (
            FixedType(6, 0),
            FixedType(7, 1),
            FixedType(5, 0, False),
            FixedType(4, 9),
        ):  # I = 0, 1, > W
            cases.append(Case("cast", "int", src, None, _draw_type(rng, dst_family, (1, 8))))
        for _ in range(12):  # fixed -> int
            cases.append(_cast_case(rng, "int", ("fixed", "ufixed"), dst_family))
        for _ in range(8):  # int -> int
            cases.append(_cast_case(rng, "int", ("int", "uint"), dst_family))
        for w in (1, 2, 8, 12, 31, 53, 61):
            cases.append(
                Case("double", "int", None, None, FixedType.int_type(w, dst_family == "int"))
            )
        for _ in range(3):  # products into an integer (an ap_int accumulator)
            a, b = _draw_type(rng, rng.choice(FAMILIES)), _draw_type(rng, rng.choice(FAMILIES))
            while not _supported(product_type(a, b), FixedType.int_type(20)):
                a, b = _draw_type(rng, rng.choice(FAMILIES)), _draw_type(rng, rng.choice(FAMILIES))
            cases.append(Case("mulcast", "int", a, b, _draw_type(rng, dst_family)))
            cases.append(
                Case(
                    "acc",
                    "int",
                    None,
                    _draw_type(rng, rng.choice(("int", "uint"))),
                    _draw_type(rng, dst_family),
                )
            )
    wide = (62, 130)
    for q, o in zip(
        QUANTIZATION_MODES, itertools.cycle(OVERFLOW_MODES)
    ):  # wider than int64: Python integers
        for src_w, dst_w in ((wide, (1, 24)), ((1, 24), wide), (wide, wide)):
            while True:
                src = _draw_type(rng, rng.choice(FAMILIES), src_w)
                dst = _draw_type(rng, rng.choice(("fixed", "ufixed")), dst_w, q, o)
                if _supported(src, dst):
                    cases.append(Case("cast", "wide", src, None, dst))
                    break
        cases.append(
            Case(
                "double",
                "wide",
                None,
                None,
                _draw_type(rng, rng.choice(("fixed", "ufixed")), wide, q, o),
            )
        )
    for family in ("int", "uint"):
        for _ in range(3):
            cases.append(_cast_case(rng, "wide", FAMILIES, family, wide))
            cases.append(Case("double", "wide", None, None, _draw_type(rng, family, wide)))
        for _ in range(2):
            a, b = _draw_type(rng, rng.choice(FAMILIES), wide), _draw_type(rng, family, (1, 40))
            cases += [Case("mul", "wide", a, b, None), Case("add", "wide", a, b, None)]
    sources = [_draw_type(rng, family) for family in FAMILIES for _ in range(3)]
    for a, b in rng.sample(list(itertools.product(sources, repeat=2)), 40):
        cases.append(Case(rng.choice(("mul", "add")), "arith", a, b, None))
    return cases


CASES = _cases()


def _cpp_type(t: FixedType) -> str:
    if t.is_integer:
        return str(t)
    return f"ap_{'' if t.signed else 'u'}fixed<{t.width},{t.integer},{t.rounding},{t.overflow},0>"


def _cpp_source() -> str:
    lines = [
        '#include "ap_fixed.h"',
        '#include "ap_int.h"',
        "#include <cstdio>",
        "#include <cstdlib>",
        "#include <string>",
        "// mantissas in and out as decimal strings: types of any width",
        "template<class T> T mk(const char* s){ ap_int_base<T::width + 1, true> v(s, 10); T x; x.V = v.V; return x; }",
        "template<class T> std::string bits(const T& x){ ap_int_base<T::width, false> r; r.V = x.V; return r.to_string(10, false); }",
        "template<class A, class D> std::string do_cast(const char* a){ D d = mk<A>(a); return bits(d); }",
        "template<class D> std::string do_double(double v){ D d = v; return bits(d); }",
        "template<class A, class B> std::string do_mul(const char* a, const char* b){ return bits(mk<A>(a) * mk<B>(b)); }",
        "template<class A, class B> std::string do_add(const char* a, const char* b){ return bits(mk<A>(a) + mk<B>(b)); }",
        "template<class A, class B, class D> std::string do_mulcast(const char* a, const char* b){ D d = mk<A>(a) * mk<B>(b); return bits(d); }",
        "template<class D, class B> std::string do_acc(const char* a, const char* b){ D d = mk<D>(a); d += mk<B>(b); return bits(d); }",
        "int main(int argc, char** argv){",
        '  FILE* f = fopen(argv[1], "r"); int c; static char sa[512], sb[512];',
        '  while (fscanf(f, "%d %511s %511s", &c, sa, sb) == 3) {',
        "    std::string r;",
        "    switch (c) {",
    ]
    for n, case in enumerate(CASES):
        a = _cpp_type(case.a) if case.a else ""
        b = _cpp_type(case.b) if case.b else ""
        d = _cpp_type(case.d) if case.d else ""
        call = {
            "cast": f"do_cast<{a}, {d} >(sa)",
            "double": f"do_double<{d} >(strtod(sa, 0))",
            "mul": f"do_mul<{a}, {b} >(sa, sb)",
            "add": f"do_add<{a}, {b} >(sa, sb)",
            "mulcast": f"do_mulcast<{a}, {b}, {d} >(sa, sb)",
            "acc": f"do_acc<{d}, {b} >(sa, sb)",
        }[case.kind]
        lines.append(f"      case {n}: r = {call}; break;")
    lines += ["    }", '    printf("%s\\n", r.c_str());', "  }", "  return 0;", "}"]
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
            [
                "g++",
                "-O0",
                "-std=c++14",
                f"-I{_ap_types_dir()}",
                str(folder / "apref.cpp"),
                "-o",
                str(tmp),
            ],
            check=True,
        )
        tmp.replace(binary)
    return binary


def _run(binary: Path, rows: list[tuple[int, str, str]]) -> list[int]:
    """Raw result bits from the reference, as signed Python integers of each case's result type."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(f"{c} {a} {b}\n" for c, a, b in rows))
        path = f.name
    try:
        # stderr: ap_types warns about harmless things (e.g. a spurious "assign NaN")
        out = subprocess.run([str(binary), path], check=True, capture_output=True, text=True).stdout
    finally:
        Path(path).unlink()
    values = []
    for (c, _, _), raw in zip(rows, out.split(), strict=True):
        t, v = CASES[c].result, int(raw)
        values.append(v - (1 << t.width) if t.signed and v >> (t.width - 1) else v)
    return values


def _mantissas(t: FixedType) -> st.SearchStrategy[int]:
    lo, hi = t.min_int, t.max_int
    return st.one_of(
        st.integers(lo, hi), st.sampled_from(sorted({lo, hi, 0, min(hi, 1), max(lo, -1)}))
    )


def _doubles(t: FixedType) -> st.SearchStrategy[float]:
    # Values on, near and halfway between grid points, beyond the range, in (-0.5, 0)
    # (where ap_int(double) has its own rule), and anything at all.
    grid = st.builds(
        lambda k, off: (k + off) * t.lsb,
        st.integers(t.min_int - 4, t.max_int + 4),
        st.sampled_from([0.0, 0.5, -0.5, 0.25, 0.75, 1e-9, -1e-9, 0.5 + 1e-12, 0.5 - 1e-12]),
    )
    anything = st.floats(allow_nan=False, allow_infinity=False)
    special = st.sampled_from(
        [
            -0.3,
            -0.5,
            -0.49999999999999994,
            -5e-324,
            -1e-300,
            -0.0,
            0.5,
            -1.5,
            -2.5,
            2.0**63,
            -(2.0**64),
        ]
    )
    return st.one_of(grid, anything, st.floats(-1e-300, 1e-300), special)


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


def _array(values, t: FixedType) -> np.ndarray:
    return np.array(values, dtype=mantissa_dtype(t))


def _emulate(case: Case, a, b) -> np.ndarray:
    if case.kind == "cast":
        return cast(_array(a, case.a), case.a, case.d)
    if case.kind == "double":
        return from_float(np.array(a, dtype=np.float64), case.d)
    if case.kind == "mul":
        return multiply(_array(a, case.a), case.a, _array(b, case.b), case.b)[0]
    if case.kind == "add":
        return add(_array(a, case.a), case.a, _array(b, case.b), case.b)[0]
    if case.kind == "mulcast":
        m, t = multiply(_array(a, case.a), case.a, _array(b, case.b), case.b)
        return cast(m, t, case.d)
    m, t = add(_array(a, case.d), case.d, _array(b, case.b), case.b)
    return cast(m, t, case.d)


def _check(binary: Path, vectors) -> None:
    rows = [
        (n, float(a).hex() if CASES[n].kind == "double" else str(a), str(b)) for n, a, b in vectors
    ]
    expected = _run(binary, rows)
    for n in {v[0] for v in vectors}:
        sel = [i for i, v in enumerate(vectors) if v[0] == n]
        case = CASES[n]
        a = [vectors[i][1] for i in sel]
        b = [vectors[i][2] for i in sel]
        got = _emulate(case, a, b)
        assert got.dtype == mantissa_dtype(case.result)
        got = [int(g) for g in got]
        want = [expected[i] for i in sel]
        bad = [k for k in range(len(sel)) if got[k] != want[k]]
        assert not bad, (
            f"{case.kind} {case.a} {case.b} -> {case.d}: input {a[bad[0]]!r}, {b[bad[0]]}: "
            f"emulated {got[bad[0]]}, ap_types {want[bad[0]]}"
        )


def _ids(group: str, **match) -> list[int]:
    return [
        n
        for n, c in enumerate(CASES)
        if c.group == group and all(getattr(c, k) == v for k, v in match.items())
    ]


@pytest.mark.hls
@pytest.mark.parametrize(("rounding", "overflow"), MODES)
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_casts_and_double_conversion_match_ap_fixed_for_every_mode(
    ap_reference, rounding, overflow, data
):
    ids = [
        n
        for n in _ids("mode")
        if (CASES[n].d.rounding, CASES[n].d.overflow) == (rounding, overflow)
    ]
    vectors = data.draw(st.lists(_vector(ids), min_size=1, max_size=150))
    _check(ap_reference, vectors)


def _int_pair(case: Case) -> str:
    src = (
        "double"
        if case.kind == "double"
        else "int"
        if case.a is not None and case.a.is_integer
        else "fixed"
    )
    return (
        f"{src}->{'int' if case.d.is_integer else 'fixed'}"
        if case.kind in ("cast", "double")
        else case.kind
    )


@pytest.mark.hls
@pytest.mark.parametrize(
    "pair", ["double->int", "fixed->int", "int->int", "int->fixed", "mulcast", "acc"]
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_ap_int_conversions_match_ap_types(ap_reference, pair, data):
    # ap_int truncates toward zero, wraps, and has ap_types' own rules for (-0.5, 0) doubles
    # and for fixed sources without integer bits; ap_uint takes negative values modulo 2**W.
    groups = ("int", "mode") if pair == "int->fixed" else ("int",)  # int -> fixed: every mode
    ids = [n for n, c in enumerate(CASES) if c.group in groups and _int_pair(c) == pair]
    assert len(ids) >= 6
    vectors = data.draw(st.lists(_vector(ids), min_size=1, max_size=150))
    _check(ap_reference, vectors)


@pytest.mark.hls
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_types_wider_than_64_bits_stay_exact(ap_reference, data):
    vectors = data.draw(st.lists(_vector(_ids("wide")), min_size=1, max_size=150))
    _check(ap_reference, vectors)


@pytest.mark.hls
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_exact_products_and_sums_match_ap_fixed_result_types(ap_reference, data):
    vectors = data.draw(st.lists(_vector(_ids("arith")), min_size=1, max_size=200))
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
    assert (t.width, t.integer, t.signed, t.rounding, t.overflow) == (
        8,
        3,
        False,
        "AP_RND_CONV",
        "AP_SAT",
    )
    assert FixedType.parse(str(t)) == t
    i6 = FixedType.parse("ap_int<6>")
    assert i6 == FixedType.int_type(6) and i6.is_integer and str(i6) == "ap_int<6>"
    assert i6 != FixedType(6, 6, True)  # ap_int is its own family, not ap_fixed<W,W>
    assert FixedType.parse("ap_uint<70>") == FixedType.int_type(70, signed=False)
    assert product_type(FixedType(8, 3), FixedType(6, 1, False)) == FixedType(14, 4, True)
    assert plus_type(FixedType(8, 3, False), FixedType(6, 1)) == FixedType(10, 5, True)
    for bad, problem in [
        ("ap_int<6,2>", "take one parameter"),
        ("ap_fixed<8,3,AP_RND,AP_SAT,2>", "saturation bits"),
        ("ap_fixed<1025,3>", "width"),
    ]:
        with pytest.raises(ValueError, match=problem):
            FixedType.parse(bad)
    with pytest.raises(ValueError, match="no quantisation or overflow modes"):
        FixedType(6, 6, True, "AP_RND", "AP_WRAP", is_integer=True)
    with pytest.raises(ValueError, match="rounding"):
        FixedType(8, 3, True, "AP_ROUND")
    with pytest.raises(ValueError, match="NaN"):
        from_float(np.array([np.nan]), FixedType(8, 3))
    # Wider than int64: Python integers, never a silent int64 wrap.
    wide = FixedType(70, 70)
    assert mantissa_dtype(wide) == np.dtype(object) and mantissa_dtype(FixedType(61, 3)) == np.int64
    m = cast(np.array([2**40, -(2**40)]), FixedType(42, 42), FixedType(100, 60))
    assert m.dtype == object and m.tolist() == [2**80, -(2**80)]
    m, t = multiply(np.array([2**39]), FixedType(40, 40), np.array([2**39]), FixedType(40, 40))
    assert t.width == 80 and m.tolist() == [2**78]


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
    st.sampled_from(
        [
            "AP_TRN",
            "AP_TRN_ZERO",
            "AP_RND",
            "AP_RND_ZERO",
            "AP_RND_MIN_INF",
            "AP_RND_INF",
            "AP_RND_CONV",
        ]
    ),
    st.sampled_from(["AP_WRAP", "AP_SAT", "AP_SAT_SYM", "AP_SAT_ZERO"]),
    st.booleans(),
)
def test_cast_matches_exact_rational_rounding_and_overflow_without_a_compiler(
    mants, shift, rounding, overflow, signed
):
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
