"""The agent's tools, which run for real: a calculator, a read-only SQLite query and a file
writer. Each attempt gets its own :class:`Toolbox` with a fresh copy of the goal's database
and an empty sandbox directory.

No tool ever raises to its caller: bad arguments, a failing query or an escaping path give
a :class:`ToolResult` with ``ok=False`` and an ``error: ...`` message the agent can read.

* **calculator**: a safe evaluator. The expression is parsed with :mod:`ast` and walked;
  only numbers, ``+ - * / // % **``, unary ``+``/``-`` and parentheses are accepted. Model
  output is never passed to ``eval``. Arithmetic is exact (integers and fractions), so big
  integers keep every digit; a non-integer result prints as a decimal with up to 15
  significant digits. ``^`` is read as a power and ``×``/``÷`` as ``*``/``/``. Bounds:
  expression length, nesting depth, exponent size and result size.
* **sql**: one ``SELECT`` (or ``WITH ... SELECT``) statement on a per-attempt copy of the
  database, opened read-only, with an authorizer that denies writes and a step budget that
  stops runaway queries. At most 50 rows come back.
* **write_file**: writes text to a plain file name inside the attempt's sandbox directory;
  absolute paths, ``..``, sub-directories and symlink tricks are refused.
"""

from __future__ import annotations

import ast
import re
import shutil
import sqlite3
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path

TOOL_NAMES: tuple[str, ...] = ("calculator", "sql", "write_file")

MAX_EXPR_CHARS = 500
MAX_DEPTH = 40
MAX_EXPONENT = 4096
MAX_RESULT_DIGITS = 4000
MAX_SQL_CHARS = 2000
MAX_SQL_ROWS = 50
SQL_STEP_BUDGET = 2_000_000  # VM instructions, checked every 1000
MAX_FILE_CHARS = 100_000

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class ToolResult:
    """What a tool hands back to the agent. ``output`` is always a string the agent can read."""

    ok: bool
    output: str

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(False, f"error: {message}")


class ToolArgumentError(ValueError):
    """Raised inside a tool for bad arguments; turned into a ToolResult before leaving."""


# --------------------------------------------------------------------------- calculator
_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)


def _digits(x: Fraction) -> int:
    """Decimal digits of the larger of numerator and denominator (estimated from bit length,
    so no huge int is ever converted to text)."""
    bits = max(abs(x.numerator).bit_length(), x.denominator.bit_length())
    return int(bits * 0.30103) + 1


def _constant(v: object) -> Fraction:
    """A literal of the expression: an int or a finite float (read as the decimal it shows)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ToolArgumentError(f"only numbers are allowed, not {v!r}")
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        raise ToolArgumentError("number out of range")
    return Fraction(v) if isinstance(v, int) else Fraction(Decimal(repr(v)))


def _power(a: Fraction, b: Fraction) -> Fraction:
    if b.denominator != 1:
        raise ToolArgumentError("only whole-number exponents are supported")
    e = b.numerator
    if abs(e) > MAX_EXPONENT:
        raise ToolArgumentError(f"exponent {e} is too large (limit {MAX_EXPONENT})")
    if a == 0 and e < 0:
        raise ToolArgumentError("division by zero")
    if _digits(a) * abs(e) > MAX_RESULT_DIGITS * 2:
        raise ToolArgumentError("result would be too large")
    return a**e


def _binop(op: ast.operator, a: Fraction, b: Fraction) -> Fraction:
    """``a op b`` exactly, for the operators of :data:`_BINOPS`."""
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return a * b
    if isinstance(op, ast.Pow):
        return _power(a, b)
    if b == 0:
        raise ToolArgumentError("division by zero")
    if isinstance(op, ast.Div):
        return a / b
    if isinstance(op, ast.FloorDiv):
        return Fraction(a // b)
    return a - b * Fraction(a // b)


def _eval(node: ast.AST, depth: int) -> Fraction:
    if depth > MAX_DEPTH:
        raise ToolArgumentError("expression is nested too deeply")
    if isinstance(node, ast.Expression):
        return _eval(node.body, depth + 1)
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        operand = _eval(node.operand, depth + 1)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and isinstance(node.op, _BINOPS):
        a = _eval(node.left, depth + 1)
        b = _eval(node.right, depth + 1)
        r = _binop(node.op, a, b)
        if _digits(r) > MAX_RESULT_DIGITS:
            raise ToolArgumentError("result would be too large")
        return r
    what = type(node).__name__
    if isinstance(node, ast.Name):
        what = f"name {node.id!r}"
    elif isinstance(node, ast.Call):
        what = "function calls"
    raise ToolArgumentError(f"{what} not allowed; use numbers, + - * / // % ** and parentheses")


def format_number(x: Fraction) -> str:
    """Integers in full; other values as a decimal with up to 15 significant digits."""
    if x.denominator == 1:
        return str(x.numerator)
    with localcontext() as ctx:
        ctx.prec = 15
        d = Decimal(x.numerator) / Decimal(x.denominator)
    s = format(d.normalize(), "f")
    return s


def safe_eval(expression: str) -> Fraction:
    """Evaluate an arithmetic expression exactly. Raises :class:`ToolArgumentError`."""
    if not isinstance(expression, str) or not expression.strip():
        raise ToolArgumentError("empty expression")
    if len(expression) > MAX_EXPR_CHARS:
        raise ToolArgumentError(f"expression longer than {MAX_EXPR_CHARS} characters")
    expr = expression.strip().rstrip("=").strip()
    expr = expr.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    if re.search(r"\d,\d", expr):
        raise ToolArgumentError("write numbers without thousands commas, e.g. 1234567")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise ToolArgumentError(f"cannot parse {expression!r} as arithmetic") from None
    return _eval(tree, 0)


def calculator(expression: str) -> ToolResult:
    try:
        return ToolResult(True, format_number(safe_eval(expression)))
    except ToolArgumentError as exc:
        return ToolResult.error(str(exc))
    except (RecursionError, MemoryError, OverflowError, ValueError) as exc:
        return ToolResult.error(f"cannot evaluate: {type(exc).__name__}")


# --------------------------------------------------------------------------- sql
_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}


def _authorizer(action: int, *_: object) -> int:
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


def _format_value(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "NULL" if v is None else str(v)


def run_sql(db_path: str | Path | None, query: str) -> ToolResult:
    """One read-only SELECT on the database at ``db_path``. A single value comes back
    bare; otherwise a header line and ``|``-separated rows."""
    if db_path is None:
        return ToolResult.error("this task has no database")
    if not isinstance(query, str) or not query.strip():
        return ToolResult.error("empty query")
    q = query.strip().rstrip(";").strip()
    if len(q) > MAX_SQL_CHARS:
        return ToolResult.error(f"query longer than {MAX_SQL_CHARS} characters")
    if ";" in q:
        return ToolResult.error("only one statement is allowed")
    if not re.match(r"(?is)^(select|with)\b", q):
        return ToolResult.error("only SELECT queries are allowed")
    try:
        con = sqlite3.connect(f"file:{Path(db_path).as_posix()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return ToolResult.error(f"cannot open the database: {exc}")
    steps = 0

    def budget() -> int:
        nonlocal steps
        steps += 1
        return 1 if steps * 1000 > SQL_STEP_BUDGET else 0

    try:
        con.set_authorizer(_authorizer)
        con.set_progress_handler(budget, 1000)
        cur = con.execute(q)
        rows = cur.fetchmany(MAX_SQL_ROWS + 1)
        header = [d[0] for d in cur.description or []]
    except sqlite3.Error as exc:
        msg = "query took too long" if steps * 1000 > SQL_STEP_BUDGET else str(exc)
        return ToolResult.error(f"SQL error: {msg}")
    finally:
        con.close()
    if len(rows) == 1 and len(rows[0]) == 1:
        return ToolResult(True, _format_value(rows[0][0]))
    if not rows:
        return ToolResult(True, "(no rows)")
    lines = [" | ".join(header)]
    lines += [" | ".join(_format_value(v) for v in r) for r in rows[:MAX_SQL_ROWS]]
    if len(rows) > MAX_SQL_ROWS:
        lines.append(f"... (more than {MAX_SQL_ROWS} rows)")
    return ToolResult(True, "\n".join(lines))


# --------------------------------------------------------------------------- write_file
def write_file(sandbox: str | Path, name: str | None, content: str) -> ToolResult:
    """Write ``content`` to ``sandbox/name``. ``name`` must be a plain file name."""
    if not name or not isinstance(name, str):
        return ToolResult.error("write_file needs a file name in the step's 'file' field")
    name = name.strip()
    if not _FILE_NAME.match(name) or name in (".", ".."):
        return ToolResult.error(f"file name {name!r} is not allowed; use a plain name like result.txt")
    if not isinstance(content, str):
        return ToolResult.error("file content must be text")
    if len(content) > MAX_FILE_CHARS:
        return ToolResult.error(f"content longer than {MAX_FILE_CHARS} characters")
    root = Path(sandbox).resolve()
    target = root / name
    if target.is_symlink() or root not in target.resolve().parents:
        return ToolResult.error(f"file name {name!r} escapes the sandbox")
    try:
        target.write_text(content, encoding="utf-8")
    except OSError as exc:
        return ToolResult.error(f"cannot write {name}: {exc.strerror}")
    return ToolResult(True, f"wrote {len(content)} characters to {name}")


# --------------------------------------------------------------------------- toolbox
class Toolbox:
    """The tools of one attempt: a copy of the goal's database and a sandbox directory.

    ``master_db`` is copied to ``attempt_dir/db.sqlite``; ``attempt_dir/sandbox`` is created
    empty. ``allowed`` limits the tools the agent may call.
    """

    def __init__(
        self, attempt_dir: str | Path, *, master_db: str | Path | None, allowed: tuple[str, ...]
    ) -> None:
        self.dir = Path(attempt_dir)
        self.sandbox = self.dir / "sandbox"
        if self.sandbox.exists():
            shutil.rmtree(self.sandbox)
        self.sandbox.mkdir(parents=True)
        self.db_path: Path | None = None
        if master_db is not None:
            self.db_path = self.dir / "db.sqlite"
            shutil.copyfile(master_db, self.db_path)
        self.allowed = tuple(allowed)

    def call(self, tool: str, argument: str, *, file: str | None = None) -> ToolResult:
        """Run one tool. Never raises."""
        try:
            if tool not in self.allowed:
                return ToolResult.error(
                    f"unknown or unavailable tool {tool!r}; available: {', '.join(self.allowed) or 'none'}"
                )
            if tool == "calculator":
                return calculator(argument)
            if tool == "sql":
                return run_sql(self.db_path, argument)
            if tool == "write_file":
                return write_file(self.sandbox, file, argument)
            return ToolResult.error(f"unknown tool {tool!r}")
        except Exception as exc:  # a tool must never crash the executor
            return ToolResult.error(f"{tool} failed: {type(exc).__name__}: {exc}")
