"""Reading the C++ of an hls4ml project as its C simulation compiles it: sources, sizes, types, weights.

Helpers for ``emulation.hls_project`` (and any layer reader):

- :func:`read_source`: a file with comments blanked and the preprocessor branches the C
  simulation skips blanked (``__SYNTHESIS__`` undefined), offsets and lines unchanged, and
  its object-like ``#define``\\ s collected;
- :func:`resolve_size`: an array size or config constant (literal, named constant,
  expression such as ``N_INPUT_1_1*2``, hls4ml's ``DIV_ROUNDUP``/``MIN``/``MAX``) as an int;
- :class:`TypeTable`: ``typedef``/``using`` aliases (also inside namespaces) resolved to
  a :class:`FixedType`;
- :class:`WeightArrays`: the values the C simulation gives each weight array: from the
  ``.txt`` file a ``load_weights_from_txt`` call reads, else from the initialiser its
  header compiles.

Every error names the file and line and says what is wrong there.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np

from emulation.fixed import FixedType, cast, from_float, mantissa_dtype

__all__ = ["Source", "TypeTable", "WeightArrays", "read_source", "resolve_size", "unqualify"]

# hls4ml's own helper macros (nnet_common.h), function-like, so not collected as constants.
_MACRO_FUNCTIONS: dict[str, Callable[..., int]] = {
    "DIV_ROUNDUP": lambda n, d: (n + d - 1) // d,
    "MIN": min,
    "MAX": max,
}


@dataclass(frozen=True)
class Source:
    """A C++ file as the C simulation sees it; ``text`` keeps the file's offsets and lines."""

    path: Path
    text: str

    def line(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def where(self, offset: int) -> str:
        return f"{self.path}:{self.line(offset)}"

    def closing_brace(self, brace: int, what: str = "this function") -> int:
        """The offset of the ``}`` that closes the ``{`` at ``brace``; unbalanced: a ``ValueError``
        naming the file, the line and ``what``."""
        depth = 0
        for i in range(brace, len(self.text)):
            if self.text[i] == "{":
                depth += 1
            elif self.text[i] == "}":
                depth -= 1
                if depth == 0:
                    return i
        raise ValueError(f"{self.where(brace)}: unbalanced braces in {what}")


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def strip_comments(text: str) -> str:
    """Comments replaced by blanks (newlines kept), string literals left alone."""
    pattern = re.compile(r'"(?:\\.|[^"\\\n])*"|/\*.*?\*/|//[^\n]*', re.S)
    return pattern.sub(lambda m: m.group(0) if m.group(0).startswith('"') else _blank(m), text)


_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*(\w+)(.*)$")


def read_source(path: Path, macros: dict[str, str]) -> Source:
    """Read ``path`` for the C simulation: inactive branches blanked, ``#define``\\ s added to ``macros``.

    ``__SYNTHESIS__`` is never defined; other macros are those defined so far (by earlier
    files, in include order, or on the compiler's command line). A condition this cannot
    evaluate raises ``ValueError`` naming the line.
    """
    text = strip_comments(path.read_text(errors="replace"))
    lines = text.split("\n")
    lines_raw = list(lines)
    stack: list[tuple[bool, bool]] = []  # (this branch active, some branch of this #if taken)
    opened: list[int] = []  # the line of each open #if
    active = True
    for k, raw in enumerate(lines):
        m = _DIRECTIVE.match(raw)
        if m is None:
            if not active:
                lines[k] = " " * len(raw)
            continue
        name, rest = m.group(1), m.group(2).strip()
        where = f"{path}:{k + 1}"
        if name in ("if", "ifdef", "ifndef"):
            cond = _condition(name, rest, macros, where) if active else False
            stack.append((active, cond))
            opened.append(k + 1)
            active = active and cond
        elif name == "elif":
            if not stack:
                raise ValueError(f"{where}: #elif without #if")
            outer, taken = stack[-1]
            cond = outer and not taken and _condition("if", rest, macros, where)
            stack[-1] = (outer, taken or cond)
            active = cond
        elif name == "else":
            if not stack:
                raise ValueError(f"{where}: #else without #if")
            outer, taken = stack[-1]
            active = outer and not taken
            stack[-1] = (outer, True)
        elif name == "endif":
            if not stack:
                raise ValueError(f"{where}: #endif without #if")
            active = stack.pop()[0]
            opened.pop()
        elif active and name == "define":
            d = re.match(r"(\w+)(\([^)]*\))?\s*(.*)$", rest)
            if d is not None and d.group(2) is None:  # object-like macros only
                macros[d.group(1)] = d.group(3).strip()
        elif active and name == "undef":
            macros.pop(rest.split()[0] if rest else "", None)
        lines[k] = " " * len(raw)  # directives themselves are not C++ text
    if stack:
        unclosed = _DIRECTIVE.match(lines_raw[opened[-1] - 1])
        assert unclosed is not None  # ``opened`` holds the lines of #if directives only
        raise ValueError(f"{path}:{opened[-1]}: #{unclosed.group(1)} without #endif")
    return Source(path, "\n".join(lines))


def _condition(kind: str, rest: str, macros: Mapping[str, str], where: str) -> bool:
    if kind == "ifdef":
        return rest.split()[0] in macros if rest else False
    if kind == "ifndef":
        return rest.split()[0] not in macros if rest else True
    expr = re.sub(r"\bdefined\s*\(\s*(\w+)\s*\)|\bdefined\s+(\w+)",
                  lambda m: "1" if (m.group(1) or m.group(2)) in macros else "0", rest)  # fmt: skip
    expr = (
        expr.replace("!", " not ")
        .replace("&&", " and ")
        .replace("||", " or ")
        .replace("not =", "!=")
    )
    try:
        return bool(_evaluate(expr, _MacroValues(macros), where, f"#if {rest}", set()))
    except ValueError:
        raise ValueError(
            f"{where}: cannot evaluate the preprocessor condition '#if {rest}'"
        ) from None


class _MacroValues(Mapping[str, str]):
    """The macros as ``#if`` reads them: an identifier that no ``#define`` defines is 0 (C11 6.10.1)."""

    def __init__(self, macros: Mapping[str, str]) -> None:
        self._macros = macros

    def __getitem__(self, name: str) -> str:
        return self._macros.get(name, "0")

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._macros)

    def __len__(self) -> int:
        return len(self._macros)


def unqualify(name: str) -> str:
    """``nnet::foo`` -> ``foo``; ``::ns::t`` -> ``t``."""
    return name.strip().split("::")[-1].strip()


# ----------------------------------------------------------------------------- sizes


_INT_LITERAL = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b")


def resolve_size(expr: str | int, constants: Mapping[str, str | int], where: str = "size") -> int:
    """The integer value of a C++ constant expression: a literal, a named constant (``#define``
    or ``static const``), or arithmetic of them (``+ - * / % ( )``, ``DIV_ROUNDUP``, ``MIN``, ``MAX``).

    ``constants`` maps names to their (unevaluated) text or value. Raises ``ValueError``
    naming ``where``, the expression and what is missing.
    """
    if isinstance(expr, int):
        return expr
    value = _evaluate(str(expr), constants, where, str(expr).strip(), set())
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}: size '{str(expr).strip()}' is not an integer")
    return value


def _evaluate(
    expr: str, constants: Mapping[str, str | int], where: str, shown: str, seen: set[str]
) -> int:
    text = _INT_LITERAL.sub(lambda m: str(int(m.group(1), 0)), expr.strip())
    text = re.sub(r"\b(?:unsigned|int|long|size_t|static_cast<\s*\w+\s*>)\b", " ", text)
    text = re.sub(r"\w+::(\w+)", r"\1", text)  # nnet::latency, CONFIG_T::n_in
    try:
        tree = ast.parse(text.replace("/", "//").replace("////", "//"), mode="eval")
    except SyntaxError:
        raise ValueError(f"{where}: cannot read the size '{shown}'") from None

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
            v = ev(node.operand)
            return (
                -v
                if isinstance(node.op, ast.USub)
                else (v if isinstance(node.op, ast.UAdd) else int(not v))
            )
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            ops: dict[type[ast.operator], Callable[[int, int], int]] = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__,
                   ast.FloorDiv: lambda x, y: int(x / y) if y else _div0(), ast.Mod: lambda x, y: x % y,
                   ast.LShift: int.__lshift__, ast.RShift: int.__rshift__}  # fmt: skip
            if type(node.op) in ops:
                return ops[type(node.op)](a, b)
        if isinstance(node, ast.BoolOp):
            values = [ev(v) for v in node.values]
            return int(all(values) if isinstance(node.op, ast.And) else any(values))
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            a, b = ev(node.left), ev(node.comparators[0])
            cmp = {
                ast.Eq: a == b,
                ast.NotEq: a != b,
                ast.Lt: a < b,
                ast.LtE: a <= b,
                ast.Gt: a > b,
                ast.GtE: a >= b,
            }
            return int(cmp[type(node.ops[0])])
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _MACRO_FUNCTIONS
        ):
            return _MACRO_FUNCTIONS[node.func.id](*(ev(a) for a in node.args))
        if isinstance(node, ast.Name):
            name = node.id
            if name in ("true", "false"):
                return int(name == "true")
            if name not in constants:
                raise ValueError(
                    f"{where}: size '{shown}' uses '{name}', which no #define or constant of the project defines"
                )
            if name in seen:
                raise ValueError(f"{where}: size '{shown}': '{name}' is defined in terms of itself")
            value = constants[name]
            if isinstance(value, int):
                return value
            return _evaluate(str(value), constants, where, shown, seen | {name})
        raise ValueError(f"{where}: cannot evaluate the size '{shown}'")

    return ev(tree)


def _div0() -> NoReturn:
    raise ValueError("division by zero")


# ----------------------------------------------------------------------------- types


_TYPEDEF_RE = re.compile(r"\btypedef\s+([^;{}]+?)\s+(\w+)\s*;")
_USING_RE = re.compile(r"(?<![\w>])using\s+(\w+)\s*=\s*([^;{}]+?)\s*;")


@dataclass
class TypeTable:
    """``typedef``/``using`` aliases, keyed by unqualified name, with where each was defined."""

    aliases: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # name -> (target, "file:line")

    def add(self, source: Source, text: str | None = None, offset: int = 0) -> None:
        """Add the aliases of ``text`` (default: the whole source), which starts at ``offset`` in it."""
        text = source.text if text is None else text
        for m in _TYPEDEF_RE.finditer(text):
            self.aliases[m.group(2)] = (m.group(1).strip(), source.where(offset + m.start()))
        for m in _USING_RE.finditer(text):
            self.aliases[m.group(1)] = (m.group(2).strip(), source.where(offset + m.start()))

    def local(self, source: Source, text: str, offset: int) -> TypeTable:
        """A copy with the aliases of a struct body added (its ``typedef ... weight_t``)."""
        table = TypeTable(dict(self.aliases))
        table.add(source, text, offset)
        return table

    def resolve(self, name: str, where: str) -> FixedType:
        """The fixed-point type ``name`` stands for; ``where`` is the place that uses it."""
        seen: set[str] = set()
        current, defined_at = name.strip(), where
        while True:
            compact = re.sub(r"\s+", "", current)
            if re.match(r"^(?:::)?(?:\w+::)*ap_u?(?:fixed|int)<", compact):
                try:
                    return FixedType.parse(
                        compact.split("::")[-1] if "::" in compact.split("<")[0] else compact
                    )
                except ValueError as err:
                    raise ValueError(f"{defined_at}: type {current!r}: {err}") from None
            key = unqualify(current)
            if key not in self.aliases:
                raise ValueError(
                    f"{defined_at}: type {current!r} (used as {name!r}) is not an ap_fixed/ap_ufixed/ap_int/"
                    "ap_uint type, and no typedef of the project defines it"
                )
            if key in seen:
                raise ValueError(f"{defined_at}: type {name!r} is defined in terms of itself")
            seen.add(key)
            current, defined_at = self.aliases[key]


# ----------------------------------------------------------------------------- weights


_ARRAY_DECL = re.compile(
    r"(?P<type>(?:\w+::)*\w+(?:\s*<[^;{}]*?>)?)\s+(?P<name>\w+)\s*\[(?P<size>[^\]]+)\]\s*"
    r"(?:=\s*\{(?P<init>[^}]*)\})?\s*;"
)
_TXT_LOAD = re.compile(
    r"load_weights_from_txt\s*<\s*([^,<>]+(?:<[^<>]*>)?)\s*,\s*([^>]+?)\s*>\s*\(\s*(\w+)\s*,\s*\"([^\"]+)\"\s*\)"
)


@dataclass(frozen=True)
class _Declaration:
    source: Source
    offset: int
    type_name: str
    size: str
    init: str | None


class WeightArrays:
    """Where the C simulation takes each weight array's values from, and those values.

    Declarations come from ``firmware/weights/*.h`` (and any other given source); the
    top function's ``load_weights_from_txt<T, N>(w2, "w2.txt")`` calls (in the branches the
    C simulation compiles) override an initialiser with the file's first line.
    """

    def __init__(self, sources: list[Source], top: Source, weights_dir: Path) -> None:
        self.weights_dir = weights_dir
        self.top = top
        self.declarations: dict[str, _Declaration] = {}
        for source in sources:
            for m in _ARRAY_DECL.finditer(source.text):
                if m.group("type") in ("return", "typedef", "using"):
                    continue
                self.declarations[m.group("name")] = _Declaration(
                    source, m.start(), m.group("type"), m.group("size"), m.group("init")
                )
        self.loads = {m.group(3): (m.group(4), m.start()) for m in _TXT_LOAD.finditer(top.text)}

    def values(self, name: str, types: TypeTable, constants: Mapping[str, str | int], expected_size: int,
               expected_type: FixedType, used_at: str) -> np.ndarray:  # fmt: skip
        """Mantissas (of ``expected_type``) the C simulation holds in array ``name``."""
        decl = self.declarations.get(name)
        if decl is None:
            raise ValueError(
                f"{used_at}: weights '{name}' are declared in no firmware/weights/*.h header"
            )
        at = decl.source.where(decl.offset)
        dtype = types.resolve(decl.type_name, at)
        if dtype != expected_type:
            raise ValueError(
                f"{at}: weights '{name}' are declared {dtype}, the layer's config uses {expected_type}"
            )
        size = resolve_size(decl.size, constants, at)
        if size != expected_size:
            raise ValueError(
                f"{at}: weights '{name}' have {size} entries, the layer needs {expected_size}"
            )
        if name in self.loads:
            fname, offset = self.loads[name]
            path = self.weights_dir / fname
            if not path.exists():
                raise ValueError(
                    f"{self.top.where(offset)}: weights '{name}' are loaded from {path}, which does not exist"
                )
            lines = path.read_text(errors="replace").splitlines()
            tokens = [t for t in (lines[0] if lines else "").split(",") if t.strip()]
            where = f"{path}:1"  # the C simulation reads the first line
            from_text = True
        elif decl.init is not None:
            tokens = [t for t in decl.init.split(",") if t.strip()]
            where, from_text = at, False
        else:
            raise ValueError(
                f"{at}: weights '{name}' are declared without values for the C simulation, and "
                f"{self.top.path.name} loads them from no .txt file"
            )
        if len(tokens) != size:
            raise ValueError(
                f"{where}: {len(tokens)} values for weights '{name}', the layer needs {size}"
            )
        return _convert_tokens(tokens, dtype, from_text, where)


def _convert_tokens(tokens: list[str], t: FixedType, from_text: bool, where: str) -> np.ndarray:
    """Values as the C simulation converts them into ``t``.

    From a .txt file: ``istream >> ap_fixed`` reads a double; ``istream >> ap_int`` parses
    the token as an integer literal (ap_types' string constructor). From an initialiser:
    the C++ literal (a double, or an integer) converted by the type's constructor.
    """
    int_at, ints, float_at, floats = [], [], [], []
    for k, token in enumerate(tokens):
        tok = token.strip()
        lit = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F]+|\d+)[uUlL]*", tok)
        if lit is not None:
            int_at.append(k)
            ints.append(int(lit.group(1) + lit.group(2), 0))
            continue
        if from_text and t.is_integer:
            raise ValueError(
                f"{where}: weight {tok!r} is not an integer; ap_types reads ap_int weights as integers"
            )
        try:
            floats.append(float(tok if from_text else tok.rstrip("fF")))
        except ValueError:
            raise ValueError(f"{where}: cannot read the weight value {tok!r}") from None
        float_at.append(k)
    out = np.empty(len(tokens), dtype=mantissa_dtype(t))
    if ints:  # exact at any size: the type's constructor from an integer
        out[int_at] = cast(np.array(ints, dtype=object), 0, t)
    if floats:
        out[float_at] = from_float(np.array(floats, dtype=np.float64), t)
    return out
