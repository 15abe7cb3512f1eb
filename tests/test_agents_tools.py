"""Agent tools with good and bad arguments, the plan parser, the event log and AgentConfig."""

from __future__ import annotations

import itertools
import json
import sqlite3
from fractions import Fraction

import pytest

from alems.agents.config import AgentConfig
from alems.agents.events import EventLog, events_frame, read_events
from alems.agents.plan import PlanParseError, parse_plan, plan_schema, substitute
from alems.agents.tools import Toolbox, calculator, run_sql, safe_eval, write_file
from alems.errors import ConfigError


# --------------------------------------------------------------------------- calculator
@pytest.mark.parametrize(
    ("expr", "out"),
    [
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("-3 ** 2", "-9"),
        ("2 ** -1", "0.5"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("-7 % 3", "2"),
        ("10 / 4", "2.5"),
        ("10 / 3", "3.33333333333333"),
        ("0.1 + 0.2", "0.3"),
        ("123456789 * 987654321", "121932631112635269"),
        ("97 ** 12", str(97**12)),
        ("2^10", "1024"),
        ("6 × 7 ÷ 2", "21"),
        ("12*3 =", "36"),
        ("+5", "5"),
    ],
)
def test_calculator_exact(expr: str, out: str) -> None:
    res = calculator(expr)
    assert res.ok, res.output
    assert res.output == out


def test_calculator_big_integers_keep_every_digit() -> None:
    a, b, c = 98765432123, 12345678987, 555555555555
    assert calculator(f"{a} * {b} - {c}").output == str(a * b - c)
    assert safe_eval("3 ** 200") == Fraction(3**200)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("__import__('os').system('echo pwned')", "function calls not allowed"),
        ("open('/etc/passwd')", "function calls not allowed"),
        ("x + 1", "name 'x' not allowed"),
        ("2 ** 100000", "exponent 100000 is too large"),
        ("99 ** 4000", "too large"),
        ("(10 ** 3000) * (10 ** 3000)", "too large"),
        ("2 ** 0.5", "whole-number exponents"),
        ("1,234 + 1", "without thousands commas"),
        ("'a' * 3", "only numbers are allowed"),
        ("True + 1", "only numbers are allowed"),
        ("[1, 2]", "List not allowed"),
        ("1 < 2", "Compare not allowed"),
        ("1 +", "cannot parse"),
        ("-" * 60 + "1", "nested too deeply"),
        ("1" * 501, "longer than 500"),
    ],
)
def test_calculator_bad_arguments_return_messages(expr: str, message: str) -> None:
    res = calculator(expr)
    assert not res.ok
    assert res.output.startswith("error: ")
    assert message in res.output


def test_calculator_rejects_non_string() -> None:
    res = calculator(None)  # type: ignore[arg-type]
    assert not res.ok and "empty expression" in res.output


# --------------------------------------------------------------------------- sql
@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "db.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE orders (id INTEGER, rep TEXT, units INTEGER);"
        "INSERT INTO orders VALUES (1, 'Ana', 5), (2, 'Ben', 7), (3, 'Ana', 2);"
    )
    con.commit()
    con.close()
    return path


def test_sql_select(db) -> None:
    assert run_sql(db, "SELECT SUM(units) FROM orders WHERE rep = 'Ana'").output == "7"
    res = run_sql(db, "SELECT rep, SUM(units) AS u FROM orders GROUP BY rep ORDER BY rep;")
    assert res.ok and res.output == "rep | u\nAna | 7\nBen | 7"
    assert run_sql(db, "SELECT * FROM orders WHERE id = 99").output == "(no rows)"
    assert run_sql(db, "WITH t AS (SELECT units FROM orders) SELECT MAX(units) FROM t").output == "7"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty query"),
        ("DELETE FROM orders", "only SELECT queries"),
        ("DROP TABLE orders", "only SELECT queries"),
        ("SELECT 1; DROP TABLE orders", "only one statement"),
        ("SELECT nope FROM orders", "SQL error: no such column: nope"),
        ("SELECT * FROM missing", "SQL error: no such table: missing"),
        ("SELEC 1", "only SELECT queries"),
        ("WITH x AS (SELECT 1) DELETE FROM orders", "SQL error"),
        ("SELECT load_extension('x')", "SQL error"),
        (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c",
            "SQL error",
        ),
    ],
)
def test_sql_bad_queries_return_messages(db, query: str, message: str) -> None:
    res = run_sql(db, query)
    assert not res.ok
    assert message in res.output
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 3  # nothing changed
    con.close()


def test_sql_runaway_query_is_stopped(db) -> None:
    q = "SELECT COUNT(*) FROM orders a, orders b, orders c, orders d, orders e, orders f, orders g, orders h, orders i, orders j, orders k, orders l, orders m"
    res = run_sql(db, q)
    assert not res.ok and "took too long" in res.output


def test_sql_without_database() -> None:
    res = run_sql(None, "SELECT 1")
    assert not res.ok and "no database" in res.output


# --------------------------------------------------------------------------- write_file
def test_write_file(tmp_path) -> None:
    res = write_file(tmp_path, "result.txt", "42")
    assert res.ok and (tmp_path / "result.txt").read_text() == "42"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "needs a file name"),
        ("", "needs a file name"),
        ("../escape.txt", "not allowed"),
        ("/etc/passwd", "not allowed"),
        ("sub/dir.txt", "not allowed"),
        ("..", "not allowed"),
        (".hidden", "not allowed"),
        ("a" * 200, "not allowed"),
    ],
)
def test_write_file_refuses_escapes(tmp_path, name, message: str) -> None:
    box = tmp_path / "box"
    box.mkdir()
    res = write_file(box, name, "x")
    assert not res.ok and message in res.output
    assert list(tmp_path.iterdir()) == [box] and list(box.iterdir()) == []


def test_write_file_refuses_symlink(tmp_path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "link.txt").symlink_to(tmp_path / "outside.txt")
    res = write_file(box, "link.txt", "x")
    assert not res.ok and "escapes the sandbox" in res.output
    assert not (tmp_path / "outside.txt").exists()


def test_write_file_too_long(tmp_path) -> None:
    res = write_file(tmp_path, "big.txt", "x" * 100_001)
    assert not res.ok and "longer than" in res.output


# --------------------------------------------------------------------------- toolbox
def test_toolbox_copies_the_database_per_attempt(tmp_path, db) -> None:
    box1 = Toolbox(tmp_path / "a1", master_db=db, allowed=("sql", "calculator", "write_file"))
    box2 = Toolbox(tmp_path / "a2", master_db=db, allowed=("sql",))
    assert box1.db_path != box2.db_path and box1.db_path.exists()
    assert box1.call("sql", "SELECT COUNT(*) FROM orders").output == "3"
    assert box1.call("write_file", "7", file="r.txt").ok
    assert (tmp_path / "a1" / "sandbox" / "r.txt").read_text() == "7"
    res = box2.call("calculator", "1+1")
    assert not res.ok and "unavailable tool 'calculator'; available: sql" in res.output
    res = box2.call("rm", "-rf /")
    assert not res.ok and "unknown or unavailable tool 'rm'" in res.output


def test_toolbox_never_raises(tmp_path) -> None:
    box = Toolbox(tmp_path / "a", master_db=None, allowed=("sql", "calculator", "write_file"))
    for tool, arg in [("sql", "SELECT 1"), ("calculator", 12), ("write_file", None)]:
        res = box.call(tool, arg)  # type: ignore[arg-type]
        assert not res.ok and res.output.startswith("error: ")


# --------------------------------------------------------------------------- plan parser
TOOLS = ("calculator", "sql", "write_file")


def test_parse_plan_valid_and_forgiving() -> None:
    steps = parse_plan('{"steps": [{"action": "calculator", "input": "1+1"}]}', TOOLS, 5)
    assert [(s.tool, s.input) for s in steps] == [("calculator", "1+1")]
    fenced = 'Here is my plan:\n```json\n{"steps": [{"action": "sql", "input": "SELECT 1"}]}\n```\nDone.'
    assert parse_plan(fenced, TOOLS, 5)[0].tool == "sql"
    trailing = '{"steps": [{"tool": "llm", "input": "why?"}]} and some words'
    assert parse_plan(trailing, TOOLS, 5)[0].tool == "llm"
    bare = '[{"action": "calculator", "input": 42}]'
    assert parse_plan(bare, TOOLS, 5)[0].input == "42"
    wf = parse_plan('{"steps": [{"action": "write_file", "file": "r.txt", "input": "{1}"}]}', TOOLS, 5)
    assert wf[0].file == "r.txt"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no '\\{' or '\\[' found"),
        ("I will compute it.", "no '\\{' or '\\[' found"),
        ('{"steps": [{"action": "calculator", "input": "1+1"}', "not valid JSON"),
        ("{'steps': []}", "not valid JSON"),
        ('{"plan": []}', "no 'steps' list"),
        ('{"steps": {}}', "'steps' must be a list"),
        ('{"steps": []}', "no steps"),
        ('{"steps": ["calculator"]}', "step 1 is not an object"),
        ('{"steps": [{"action": "python", "input": "1"}]}', "step 1 names action 'python'"),
        ('{"steps": [{"action": "calculator"}]}', "step 1 has no 'input'"),
        ('{"steps": [{"action": "calculator", "input": "  "}]}', "step 1 has no 'input'"),
        ('{"steps": [{"action": "calculator", "input": [1, 2]}]}', "step 1 has no 'input'"),
        ('{"steps": [' + ",".join(['{"action": "llm", "input": "x"}'] * 6) + "]}", "6 steps; at most 5"),
    ],
)
def test_parse_plan_malformed(text: str, message: str) -> None:
    with pytest.raises(PlanParseError, match=message):
        parse_plan(text, TOOLS, 5)


def test_parse_plan_respects_goal_tools() -> None:
    with pytest.raises(PlanParseError, match="allowed: calculator, llm"):
        parse_plan('{"steps": [{"action": "sql", "input": "SELECT 1"}]}', ("calculator",), 5)


def test_plan_schema_lists_tools() -> None:
    s = plan_schema(("calculator",), 4)
    shapes = s["properties"]["steps"]["items"]["anyOf"]
    assert [sh["properties"]["action"]["const"] for sh in shapes] == ["calculator", "llm"]
    assert all("file" not in sh["properties"] for sh in shapes)
    assert s["properties"]["steps"]["maxItems"] == 4
    wf = plan_schema(("sql", "write_file"), 4)["properties"]["steps"]["items"]["anyOf"]
    assert wf[1]["required"] == ["action", "file", "input"] and "file" not in wf[0]["properties"]


def test_plan_schema_accepts_what_the_parser_accepts() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = plan_schema(TOOLS, 5)
    good = {
        "steps": [
            {"action": "sql", "input": "SELECT 1"},
            {"action": "write_file", "file": "r.txt", "input": "{1}"},
        ]
    }
    jsonschema.validate(good, schema)
    assert len(parse_plan(json.dumps(good), TOOLS, 5)) == 2
    for bad in (
        {"steps": [{"action": "sql", "input": "SELECT 1", "file": "r.txt"}]},
        {"steps": [{"action": "write_file", "input": "x"}]},
        {"steps": []},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_substitute() -> None:
    assert substitute("{1} * 2 + {step2}", ["10", "3"]) == "10 * 2 + 3"
    assert substitute("{ result1 }", ["x"]) == "x"
    with pytest.raises(ValueError, match=r"reference \{3\} points to a step that has no result yet"):
        substitute("{3}", ["a"])
    assert substitute("{3}", ["a"], strict=False) == "{3}"


# --------------------------------------------------------------------------- event log
def test_event_log_records_and_atomic_close(tmp_path) -> None:
    ticks = itertools.count(10)
    path = tmp_path / "run" / "events.jsonl"
    log = EventLog(path, clock=lambda: float(next(ticks)))
    t = log.emit("goal_start", goal_id="g", rep=1, mode="agentic", attempt=0)
    log.emit("tool_end", goal_id="g", rep=1, mode="agentic", attempt=2, name="sql", error="boom")
    scope = log.scope(goal_id="g", rep=1, mode="agentic")
    scope.emit("llm_end", 2, name="plan", tokens_in=12, tokens_out=3)
    assert t == 10.0
    assert not path.exists()  # the final file appears only when complete
    assert log.partial_path.read_text().count("\n") == 3  # but every line is already flushed
    log.close()
    log.close()  # idempotent
    recs = read_events(path)
    assert recs[0] == {
        "t": 10.0,
        "goal_id": "g",
        "rep": 1,
        "mode": "agentic",
        "attempt": 0,
        "kind": "goal_start",
    }
    assert recs[1]["error"] == "boom" and recs[1]["name"] == "sql" and "tokens_in" not in recs[1]
    assert recs[2]["tokens_in"] == 12 and recs[2]["tokens_out"] == 3 and recs[2]["t"] == 12.0
    assert not log.partial_path.exists()
    df = events_frame(recs)
    assert list(df.columns) == [
        "t",
        "goal_id",
        "rep",
        "mode",
        "attempt",
        "kind",
        "name",
        "tokens_in",
        "tokens_out",
        "error",
    ]
    with pytest.raises(ValueError, match="is closed"):
        log.emit("goal_end", goal_id="g", rep=1, mode="agentic", attempt=0)


def test_event_log_span_and_errors(tmp_path) -> None:
    with EventLog(tmp_path / "e.jsonl") as log:
        with pytest.raises(ValueError, match="unknown event kind 'bogus'"):
            log.emit("bogus", goal_id="g", rep=0, mode="linear", attempt=0)
        scope = log.scope(goal_id="g", rep=0, mode="linear")
        with scope.span("tool_start", "tool_end", 1, name="calculator") as extra:
            extra["error"] = "bad"
        with pytest.raises(RuntimeError), scope.span("llm_start", "llm_end", 1, name="answer"):
            raise RuntimeError("down")
    recs = read_events(tmp_path / "e.jsonl")
    assert [r["kind"] for r in recs] == ["tool_start", "tool_end", "llm_start", "llm_end"]
    assert recs[1]["error"] == "bad" and recs[3]["error"] == "RuntimeError: down"
    assert all(a["t"] <= b["t"] for a, b in itertools.pairwise(recs))
    (tmp_path / "bad.jsonl").write_text('{"t": 1}\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2: malformed event record"):
        read_events(tmp_path / "bad.jsonl")


# --------------------------------------------------------------------------- config
def test_agent_config_from_dict() -> None:
    cfg = AgentConfig.from_dict(
        {
            "max_attempts": 5,
            "verify": False,
            "max_tokens": {"plan": 99},
            "inject_timeout_rate": 0.25,
            "backoff_s": 1,
        }
    )
    assert cfg.max_attempts == 5 and cfg.verify is False and cfg.backoff_s == 1.0
    assert cfg.max_tokens["plan"] == 99 and cfg.max_tokens["answer"] == AgentConfig().max_tokens["answer"]
    assert cfg.backoff(1) == 1.0 and cfg.backoff(3) == 4.0
    assert AgentConfig.from_dict(None) == AgentConfig()


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"max_atempts": 2}, "unknown agents config key"),
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"max_attempts": "3"}, "wrong type"),
        ({"verify": "yes"}, "wrong type"),
        ({"inject_tool_failure_rate": 1.5}, r"must be in \[0, 1\]"),
        ({"backoff_s": -1}, "must be a finite number >= 0"),
        ({"max_tokens": {"bogus": 3}}, "unknown agents.max_tokens key 'bogus'"),
        ({"max_tokens": {"plan": 0}}, "must be a positive integer"),
    ],
)
def test_agent_config_errors(mapping, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as exc:
        AgentConfig.from_dict(mapping)
    assert exc.value.fix
