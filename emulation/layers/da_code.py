"""The C++ that da4ml generates for hls4ml's ``distributed_arithmetic`` layers, read and run exactly.

hls4ml 1.3 writes each DA dense kernel as a function ``dense_da_<index><inp_t, out_t>(model_inp,
model_out)`` that da4ml generates into ``firmware/nnet_utils/nnet_code_gen.h``: one declaration
per intermediate value, e.g.::

    ap_fixed<16,6> v0 = model_inp[0];
    ap_fixed<19,7> v6 = v0 - bit_shift<-2>(v1);
    ap_fixed<24,12> v40 = v39 - ap_ufixed<4,3>(6.5);
    model_out[0] = ap_fixed<24,9>(bit_shift<-3>(v40));

:func:`read_program` parses such a body as the C simulation compiles it into a
:class:`DAProgram`. ap_types arithmetic is exact (``+``, ``-``, unary ``-`` and ``*`` return a
type that holds the result; ``bit_shift<s>`` reinterprets the word with ``s`` more integer bits,
``nnet_function_stubs.h``); each declaration then assigns the value into its declared type (that
type's quantisation and overflow modes), a constructor ``T(expr)`` likewise, and
``model_out[j] = ...`` into ``out_t``. Besides sums and shifts, da4ml's other statement forms are
read too: constants, ``x > 0 ? T(x) : T(0)`` (ReLU), ``v[k] ? T(a) : T(b)`` (MSB multiplexer)
and products. Anything else (lookup tables, bit operations) is refused with the file and line.
:func:`run_program` executes the statements in order on mantissas, exactly.
:func:`read_fill_buffer` reads the generated ``fill_buffer`` classes of DA convolutions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emulation.fixed import (
    FixedType,
    OverflowCounter,
    add,
    cast,
    from_float,
    mantissa_dtype,
    multiply,
    plus_type,
)
from emulation.hls_text import Source, read_source
from emulation.spec import product_type

__all__ = [
    "DAProgram",
    "Expr",
    "Statement",
    "find_function",
    "read_fill_buffer",
    "read_program",
    "run_program",
]

CHUNK = 16_384  # events per pass of the statement loop (bounds the memory of the intermediates)

# ----------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr:
    """One typed expression node: ``op`` with ``args`` (sub-expressions or ints) and its exact type.

    ``type`` is the type of the exact result (``None`` for a condition). Ops: ``in`` (input
    index), ``var`` (name), ``const`` (mantissa of ``type``), ``cast``, ``shift`` (bit_shift),
    ``neg``, ``add``, ``mul``, ``gt``, ``bit``, ``select``.
    """

    op: str
    args: tuple[Any, ...]
    type: FixedType | None

    @property
    def value_type(self) -> FixedType:
        """The type of a number (an expression that is not a condition)."""
        assert self.type is not None
        return self.type


@dataclass(frozen=True)
class Statement:
    target: str  # the declared name ("" for an output)
    output: int  # the output index for ``model_out[j] = ...``, else -1
    type: FixedType  # the declared type (or out_t)
    expr: Expr
    where: str


@dataclass(frozen=True, eq=False)
class DAProgram:
    """A parsed DA function: its statements in order and where each value is last used."""

    function: str
    where: str  # file:line of the definition
    n_in: int
    n_out: int
    input_type: FixedType  # the call's inp_t
    result_type: FixedType  # the call's out_t
    statements: tuple[Statement, ...]
    last_use: dict[str, int]  # name -> index of the last statement reading it


def _exact(t: FixedType) -> FixedType:
    """The type without its modes: what an exact intermediate carries."""
    if t.is_integer:
        return t
    return FixedType(t.width, t.integer, t.signed)


def _neg_type(t: FixedType) -> FixedType:
    if t.is_integer:
        return FixedType.int_type(t.width + 1)
    return FixedType(t.width + 1, t.integer + 1, True)


def _plus_type(a: FixedType, b: FixedType) -> FixedType:
    """``plus_type``, an ap_int where both terms are (ap_int + ap_int is an ap_int)."""
    t = plus_type(a, b)
    return FixedType.int_type(t.width, t.signed) if a.is_integer and b.is_integer else t


def _union_type(a: FixedType, b: FixedType) -> FixedType:
    """A type holding every value of both (for the two branches of ``c ? a : b``)."""
    if _exact(a) == _exact(b):
        return _exact(a)
    t = _plus_type(a, b)
    return FixedType(t.width, t.integer, t.signed)


# ----------------------------------------------------------------------------- parsing

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<aptype>(?:\w+::)*ap_u?(?:fixed|int)\s*<[^<>()]*>)"
    r"|(?P<shift>(?:\w+::)*bit_shift\s*<\s*(?P<amount>[+-]?\d+)\s*>)"
    r"|(?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)"
    r"|(?P<int>\d+)(?![\w.])"
    r"|(?P<name>[A-Za-z_]\w*(?:::\w+)*)"
    r"|(?P<op>[-+*?:>\[\]()])"
)
_KINDS = ("space", "aptype", "shift", "float", "int", "name", "op")


class _Parser:
    """Recursive descent over one right-hand side: ``?:`` < ``>`` < ``+ -`` < ``*`` < unary ``-``."""

    def __init__(self, text: str, where: str, scope: _Scope) -> None:
        self.where, self.scope, self.text = where, scope, text.strip()
        self.tokens: list[tuple[str, str, str | None]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise self.fail(f"cannot read {text[pos:].strip()[:30]!r}")
            kind = next(k for k in _KINDS if m.group(k) is not None)
            if kind != "space":
                self.tokens.append((kind, m.group(0), m.group("amount")))
            pos = m.end()
        self.k = 0

    def fail(self, problem: str) -> ValueError:
        return ValueError(f"{self.where}: {problem} in '{' '.join(self.text.split())}'")

    def peek(self) -> tuple[str, str]:
        if self.k < len(self.tokens):
            kind, text, _ = self.tokens[self.k]
            return kind, text
        return "end", ""

    def take(self, text: str | None = None) -> tuple[str, str, str | None]:
        if self.k >= len(self.tokens):
            raise self.fail(f"expected {text!r}" if text else "unexpected end")
        token = self.tokens[self.k]
        if text is not None and token[1] != text:
            raise self.fail(f"expected {text!r}, found {token[1]!r}")
        self.k += 1
        return token

    def parse(self) -> Expr | float:
        e = self.ternary()
        if self.k != len(self.tokens):
            raise self.fail(f"unexpected {self.tokens[self.k][1]!r}")
        return e

    def value(self, e: Expr | float) -> Expr:
        """``e`` used as an operand: a floating-point literal is only read by a constructor."""
        if isinstance(e, float):
            raise self.fail(f"the floating-point literal {e!r} is used outside a type constructor")
        return e

    def ternary(self) -> Expr | float:
        cond = self.comparison()
        if self.peek()[1] != "?":
            return cond
        self.take("?")
        a = self.typed(self.ternary())
        self.take(":")
        b = self.typed(self.ternary())
        c = self.value(cond)
        if c.type is not None:
            raise self.fail("a number is used as a condition (da4ml writes comparisons and bits)")
        return Expr("select", (c, a, b), _union_type(a.value_type, b.value_type))

    def comparison(self) -> Expr | float:
        a = self.sum()
        if self.peek()[1] != ">":
            return a
        self.take(">")
        b = self.typed(self.sum())
        return Expr("gt", (self.typed(a), b), None)

    def sum(self) -> Expr | float:
        a = self.product()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            left, right = self.typed(a), self.typed(self.product())
            if op == "-":
                right = Expr("neg", (right,), _neg_type(_t(right)))
            a = Expr("add", (left, right), _plus_type(_t(left), _t(right)))
        return a

    def product(self) -> Expr | float:
        a = self.unary()
        while self.peek()[1] == "*":
            self.take("*")
            left, right = self.typed(a), self.typed(self.unary())
            a = Expr("mul", (left, right), product_type(_t(left), _t(right)))
        return a

    def typed(self, e: Expr | float) -> Expr:
        e = self.value(e)
        if e.type is None:
            raise self.fail("a comparison is used as a number")
        return e

    def unary(self) -> Expr | float:
        if self.peek()[1] == "-":
            self.take("-")
            e = self.unary()
            if isinstance(e, float):
                return -e
            if e.op == "const" and e.args[1] == "literal":  # -5: the literal's own sign
                return _int(-e.args[0])
            e = self.typed(e)
            return Expr("neg", (e,), _neg_type(_t(e)))
        return self.postfix(self.primary())

    def postfix(self, e: Expr | float) -> Expr | float:
        if self.peek()[1] != "[":
            return e
        if isinstance(e, float) or e.op not in ("var", "in", "cast"):
            raise self.fail("a bit is selected from something that is not a variable")
        self.take("[")
        kind, text, _ = self.take()
        if kind != "int":
            raise self.fail(f"bit index {text!r} is not an integer literal")
        self.take("]")
        bit = int(text)
        if not 0 <= bit < _t(e).width:
            raise self.fail(f"bit {bit} of a {_t(e).width}-bit value")
        return Expr("bit", (e, bit), None)

    def primary(self) -> Expr | float:
        kind, text, amount = self.take()
        if kind == "float":
            return float(text)
        if kind == "int":
            return _int(int(text))
        if text == "(":
            e = self.ternary()
            self.take(")")
            return e
        if kind == "shift":
            assert amount is not None
            self.take("(")
            e = self.typed(self.ternary())
            self.take(")")
            return _bit_shift(e, int(amount), self.fail)
        if kind == "aptype" or (
            kind == "name" and self.peek()[1] == "(" and self.scope.is_type(text)
        ):
            t = self.scope.type(text, self.where)
            self.take("(")
            e = self.ternary()
            self.take(")")
            return convert(e, t, self.fail)
        if kind == "name":
            if text == self.scope.input_name:
                self.take("[")
                k_kind, k_text, _ = self.take()
                self.take("]")
                if k_kind != "int" or not 0 <= int(k_text) < self.scope.n_in:
                    raise self.fail(f"{text}[{k_text}] is not one of the {self.scope.n_in} inputs")
                return Expr("in", (int(k_text),), self.scope.input_type)
            declared = self.scope.declared.get(text)
            if declared is None:
                if text in ("bit_shift",) or text.endswith("::bit_shift"):
                    raise self.fail("bit_shift without its <shift> argument")
                raise self.fail(f"'{text}' is not declared before this statement")
            return Expr("var", (text,), declared)
        raise self.fail(f"unexpected {text!r}")


def _t(e: Expr) -> FixedType:
    return e.value_type


def _int(value: int) -> Expr:
    """An integer literal: a C++ ``int`` (``long`` where it needs more bits)."""
    return Expr("const", (value, "literal"), FixedType.int_type(max(32, value.bit_length() + 1)))


def _bit_shift(e: Expr, s: int, fail: Callable[[str], ValueError]) -> Expr:
    """``nnet::bit_shift<s>``: the same word read as ap_fixed<b, i + s> (ap_fixed<b, s> from an ap_int<b>)."""
    t = _t(e)
    if t.is_integer and e.op not in ("var", "in", "cast"):
        raise fail("bit_shift of an integer expression (its ap_int width is not read)")
    integer = s if t.is_integer else t.integer + s
    return Expr("shift", (e, s), FixedType(t.width, integer, t.signed))


def convert(e: Expr | float, t: FixedType, fail: Callable[[str], ValueError]) -> Expr:
    """``t(e)`` or ``t v = e``: the exact value assigned into ``t`` (literals folded into constants)."""
    if isinstance(e, float):
        return Expr("const", (int(from_float(np.array([e]), t)[0]), "value"), t)
    if e.type is None:
        raise fail("a comparison is assigned to a number")
    if e.op == "const":
        m = cast(np.array([e.args[0]], dtype=object), e.type, t)
        return Expr("const", (int(m[0]), "value"), t)
    return Expr("cast", (e,), t)


@dataclass
class _Scope:
    input_name: str
    n_in: int
    input_type: FixedType
    resolve: Callable[[str, str], FixedType]
    template: frozenset[str]
    declared: dict[str, FixedType]

    def is_type(self, name: str) -> bool:
        return name in self.template or name not in self.declared

    def type(self, text: str, where: str) -> FixedType:
        return self.resolve(text, where)


# ----------------------------------------------------------------------------- the function


@functools.lru_cache(maxsize=16)
def _read(path: str, mtime_ns: int) -> Source:
    return read_source(Path(path), {})


def _headers(firmware: Path) -> list[Path]:
    """Where hls4ml writes generated code first, then every other header of the project."""
    first = firmware / "nnet_utils" / "nnet_code_gen.h"
    rest = sorted(firmware.glob("*.h")) + sorted((firmware / "nnet_utils").glob("*.h"))
    return [p for p in dict.fromkeys([first, *rest]) if p.exists()]


_DEFINITION = (
    r"(?:template\s*<(?P<template>[^<>]*)>\s*)?void\s+{name}\s*\((?P<params>[^)]*)\)\s*\{{"
)


def _find(
    firmware: Path, pattern: re.Pattern[str], what: str, used_at: str
) -> tuple[Source, re.Match[str], int]:
    """The first match of ``pattern`` (ending in ``{``) in the project's headers: (source, match, end of body)."""
    for path in _headers(firmware):
        source = _read(str(path), path.stat().st_mtime_ns)
        m = pattern.search(source.text)
        if m is not None:
            return source, m, source.closing_brace(m.end() - 1, what)
    raise ValueError(
        f"{used_at}: the distributed-arithmetic {what} is defined in no header of {firmware} "
        "(hls4ml writes it into nnet_utils/nnet_code_gen.h)"
    )


def find_function(firmware: Path, name: str, used_at: str) -> tuple[Source, re.Match[str], int]:
    """The definition of function ``name`` in the project's headers: (source, signature match, end of body)."""
    pattern = re.compile(_DEFINITION.format(name=re.escape(name)))
    return _find(firmware, pattern, f"function {name}", used_at)


_ARRAY_PARAM = re.compile(
    r"\s*(?:const\s+)?((?:\w+::)*\w+(?:\s*<[^<>]*>)?)\s+(\w+)\s*\[\s*(\d+)\s*\]\s*"
)
_OUTPUT = re.compile(r"(\w+)\s*\[\s*(\d+)\s*\]\s*=(?!=)\s*(.+)", re.S)
_DECLARATION = re.compile(
    r"(?:const\s+)?((?:\w+::)*\w+(?:\s*<[^;=<>]*>)?)\s+(\w+)\s*=(?!=)\s*(.+)", re.S
)


def read_program(
    firmware: Path,
    function: str,
    input_type: FixedType,
    result_type: FixedType,
    resolve: Callable[[str, str], FixedType],
    n_out: int | None,
    used_at: str,
) -> DAProgram:
    """Parse ``function``'s body (see the module doc) for a call with ``inp_t``/``out_t`` given.

    ``resolve(type_text, where)`` resolves the project's typedefs. Every problem raises one
    ``ValueError`` naming the file and line of the statement.
    """
    source, m, end = find_function(firmware, function, used_at)
    where = source.where(m.start())
    template = [p.split()[-1] for p in (m.group("template") or "").split(",") if p.strip()]
    params = [p for p in m.group("params").split(",") if p.strip()]
    parsed = [_ARRAY_PARAM.fullmatch(p) for p in params]
    if len(params) != 2 or any(p is None for p in parsed):
        raise ValueError(
            f"{where}: {function} takes ({m.group('params').strip()}); a distributed-arithmetic "
            "function takes (inp_t model_inp[N_IN], out_t model_out[N_OUT])"
        )
    (in_ts, in_name, n_in), (out_ts, out_name, n_o) = (
        (p.group(1), p.group(2), int(p.group(3))) for p in parsed if p is not None
    )
    if n_out is not None and n_o != n_out:
        raise ValueError(f"{where}: {function} writes {n_o} outputs, its call's output has {n_out}")
    bound = {}
    for t_text, t in ((in_ts, input_type), (out_ts, result_type)):
        if t_text in template:
            bound[t_text] = t

    def resolve_local(text: str, at: str) -> FixedType:
        key = re.sub(r"\s+", "", text)
        return bound[key] if key in bound else resolve(text, at)

    in_t, out_t = resolve_local(in_ts, where), resolve_local(out_ts, where)
    scope = _Scope(in_name, n_in, in_t, resolve_local, frozenset(template), {})
    statements: list[Statement] = []
    assigned: dict[int, str] = {}
    body_at = m.end()
    body = source.text[body_at:end]
    offset = 0
    for text in body.split(";"):
        at = source.where(body_at + offset + len(text) - len(text.lstrip()))
        offset += len(text) + 1
        if not text.strip():
            continue
        out = _OUTPUT.fullmatch(text.strip())
        decl = _DECLARATION.fullmatch(text.strip())
        if out is not None and out.group(1) == out_name:
            j = int(out.group(2))
            if not 0 <= j < n_o:
                raise ValueError(f"{at}: {out_name}[{j}] is not one of the {n_o} outputs")
            if j in assigned:
                raise ValueError(
                    f"{at}: {out_name}[{j}] is assigned twice (first at {assigned[j]})"
                )
            assigned[j] = at
            expr = convert(_Parser(out.group(3), at, scope).parse(), out_t, _failing(at, text))
            statements.append(Statement("", j, out_t, expr, at))
        elif decl is not None and decl.group(1) not in ("return",):
            t = resolve_local(decl.group(1), at)
            name = decl.group(2)
            if name in scope.declared or name in (in_name, out_name):
                raise ValueError(f"{at}: '{name}' is declared twice")
            expr = convert(_Parser(decl.group(3), at, scope).parse(), t, _failing(at, text))
            scope.declared[name] = t
            statements.append(Statement(name, -1, t, expr, at))
        else:
            raise ValueError(
                f"{at}: statement '{' '.join(text.split())[:80]}' of {function} is not a declaration "
                f"'type v = expression' or an output '{out_name}[j] = expression'"
            )
    missing = [j for j in range(n_o) if j not in assigned]
    if missing:
        raise ValueError(f"{where}: {function} never assigns {out_name}[{missing[0]}]")
    last_use: dict[str, int] = {}
    for k, st in enumerate(statements):
        for name in _names(st.expr):
            last_use[name] = k
    return DAProgram(function, where, n_in, n_o, in_t, out_t, tuple(statements), last_use)


def _failing(at: str, text: str) -> Callable[[str], ValueError]:
    return lambda problem: ValueError(f"{at}: {problem} in '{' '.join(text.split())}'")


def _names(e: Expr) -> set[str]:
    if e.op == "var":
        return {e.args[0]}
    out: set[str] = set()
    for a in e.args:
        if isinstance(a, Expr):
            out |= _names(a)
    return out


# ----------------------------------------------------------------------------- running


def _evaluate(e: Expr, x: np.ndarray, values: dict[str, np.ndarray]) -> np.ndarray:
    """The exact mantissas of ``e`` (of ``e.type``), or booleans for a condition."""
    op, args = e.op, e.args
    if op == "in":
        return x[:, args[0]]
    if op == "var":
        return values[args[0]]
    if op == "const":
        value = args[0]
        return np.array(value, dtype=mantissa_dtype(_t(e)) if abs(value) < 2**61 else object)
    if op == "cast":
        return cast(_evaluate(args[0], x, values), _t(args[0]), _t(e))
    if op == "shift":
        return _evaluate(args[0], x, values)  # the same word, read with another binary point
    if op == "neg":
        m = _evaluate(args[0], x, values)
        return -(np.asarray(m).astype(object) if mantissa_dtype(_t(e)) != np.int64 else m)
    if op == "add":
        a, b = args
        return add(_evaluate(a, x, values), _t(a), _evaluate(b, x, values), _t(b))[0]
    if op == "mul":
        a, b = args
        return multiply(_evaluate(a, x, values), _t(a), _evaluate(b, x, values), _t(b))[0]
    if op == "gt":
        a, b = args
        diff_t = _plus_type(_t(a), _neg_type(_t(b)))
        neg_b = Expr("neg", (b,), _neg_type(_t(b)))
        return _evaluate(Expr("add", (a, neg_b), diff_t), x, values) > 0
    if op == "bit":
        m = np.asarray(_evaluate(args[0], x, values))
        return ((m >> args[1]) & 1).astype(bool)
    if op == "select":
        c, a, b = args
        ma = cast(_evaluate(a, x, values), _t(a), _t(e))
        mb = cast(_evaluate(b, x, values), _t(b), _t(e))
        return np.where(_evaluate(c, x, values), ma, mb)
    raise AssertionError(op)


def run_program(
    program: DAProgram,
    x: np.ndarray,
    counter: OverflowCounter | None = None,
    name: str = "dense_da",
) -> np.ndarray:
    """Result mantissas (N, n_out) of ``out_t`` for input mantissas x (N, n_in) of ``inp_t``."""
    x = np.asarray(x)
    out = np.empty((len(x), program.n_out), dtype=mantissa_dtype(program.result_type))
    for lo in range(0, len(x), CHUNK):
        chunk = x[lo : lo + CHUNK]
        values: dict[str, np.ndarray] = {}
        for k, st in enumerate(program.statements):
            e = st.expr
            if e.op == "cast":  # the assignment (what it wraps or saturates is counted)
                label = f"{name}.result" if st.output >= 0 else f"{name}.da"
                m = cast(
                    _evaluate(e.args[0], chunk, values), _t(e.args[0]), st.type, counter, label
                )
            else:  # a constant
                m = _evaluate(e, chunk, values)
            m = np.broadcast_to(m, (len(chunk),))
            if st.output >= 0:
                out[lo : lo + len(chunk), st.output] = m
            else:
                values[st.target] = m
            for used in _names(e):
                if program.last_use.get(used) == k:
                    del values[used]
    return out


# ----------------------------------------------------------------------------- convolutions

_PARTITION = re.compile(r"if\s*\(\s*partition\s*==\s*(\d+)\s*\)\s*\{")
_FILL = re.compile(
    r"buffer\s*\[\s*(\d+)\s*\]\s*\[\s*(\d+)\s*\]\s*=\s*(?:data\s*\[\s*(\d+)\s*\]|(0))"
)


def read_fill_buffer(
    firmware: Path, name: str, shape: tuple[int, int, int], n_data: int, used_at: str
) -> np.ndarray:
    """The input index each ``buffer[pixel][tap]`` gets in each partition of the generated class
    ``name`` (``fill_buffer``: ``if (partition == p) { buffer[i][t] = data[k]; ... }``), -1 for 0.

    ``shape`` is (partitions, pixels per partition, taps); returns (partitions * pixels, taps).
    """
    pattern = re.compile(rf"class\s+{re.escape(name)}\b[^;{{]*\{{")
    source, m, end = _find(firmware, pattern, f"class {name}", used_at)
    method = re.compile(r"void\s+fill_buffer\s*\([^)]*\)\s*\{").search(source.text, m.end(), end)
    if method is None:
        raise ValueError(f"{source.where(m.start())}: class {name} has no fill_buffer method")
    body_end = source.closing_brace(method.end() - 1, f"{name}::fill_buffer")
    columns = np.full(shape, -2, dtype=np.int64)
    rest = list(source.text[method.end() : body_end])  # what no partition block explains
    for block in _PARTITION.finditer(source.text, method.end(), body_end):
        part = int(block.group(1))
        close = source.closing_brace(block.end() - 1, f"{name}::fill_buffer")
        rest[block.start() - method.end() : close + 1 - method.end()] = " " * (
            close + 1 - block.start()
        )
        offset = block.end()
        for text in source.text[block.end() : close].split(";"):
            at = source.where(offset + len(text) - len(text.lstrip()))
            offset += len(text) + 1
            if not text.strip():
                continue
            fill = _FILL.fullmatch(text.strip())
            if fill is None:
                raise ValueError(
                    f"{at}: '{' '.join(text.split())[:80]}' in {name} is not 'buffer[i][j] = data[k]' or '= 0'"
                )
            pixel, tap = int(fill.group(1)), int(fill.group(2))
            index = -1 if fill.group(4) is not None else int(fill.group(3))
            if part >= shape[0] or pixel >= shape[1] or tap >= shape[2] or index >= n_data:
                raise ValueError(f"{at}: {' '.join(text.split())} in partition {part} is outside the config's "
                                 f"{shape[0]} partitions x {shape[1]} pixels x {shape[2]} taps of {n_data} inputs")  # fmt: skip
            columns[part, pixel, tap] = index
    stray = "".join(rest).strip()
    if stray:
        at = source.where(method.end() + len("".join(rest)) - len("".join(rest).lstrip()))
        raise ValueError(
            f"{at}: '{' '.join(stray.split())[:60]}' in {name}::fill_buffer is not a partition block"
        )
    unfilled = np.argwhere(columns == -2)
    if unfilled.size:
        p, i, t = unfilled[0]
        raise ValueError(
            f"{source.where(method.start())}: {name} never fills buffer[{i}][{t}] in partition {p}"
        )
    return columns.reshape(shape[0] * shape[1], shape[2])
