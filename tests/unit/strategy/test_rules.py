"""The rule engine: compile errors, operator semantics, first-match order, and the jitted evaluator against a
plain Python evaluation of random expression trees."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from hft.strategy.rules import (
    ACTION_BUY,
    ACTION_FLAT,
    ACTION_NONE,
    ACTION_SELL,
    MAX_NESTING,
    MAX_STACK,
    OP_AND,
    OP_CONST,
    OP_OR,
    CompiledRules,
    RuleError,
    compile_rules,
    evaluate_rules,
    rule_signal,
)

FEATURES = ("spread_bps", "imbalance", "momentum", "trade_flow")
NAN = float("nan")
INF = float("inf")


def row(spread_bps: float = 1.0, imbalance: float = 0.0, momentum: float = 0.0, trade_flow: float = 0.0) -> np.ndarray:
    return np.array([spread_bps, imbalance, momentum, trade_flow], np.float64)


def holds(condition: str, **features: float) -> bool:
    """Compile ``condition -> buy`` alone and say whether it fires."""
    return compile_rules([f"{condition} -> buy"], FEATURES).evaluate(row(**features)) == ACTION_BUY


def compile_error(rule: str) -> RuleError:
    with pytest.raises(RuleError) as info:
        compile_rules(["imbalance > 0 -> buy", rule], FEATURES)  # second: the index is reported
    return info.value


# ---- compile errors: message content and column


@pytest.mark.parametrize(
    ("rule", "column", "fragments"),
    [
        # unknown feature: the closest name and the known ones
        ("spread_bps < 5 and imbalanse > 0.3 -> buy", 20,
         ["unknown feature 'imbalanse'", "did you mean 'imbalance'?",
          "known features: spread_bps, imbalance, momentum, trade_flow"]),
        ("zzz > 1 -> buy", 1, ["unknown feature 'zzz'", "known features"]),
        ("imbalance > 0.3 and buy", 21, ["unknown feature 'buy'", "an action must follow '->'"]),
        # bad syntax
        ("imbalance > > 1 -> buy", 13, ["expected a number, feature name, function call or '(', found '>'"]),
        ("imbalance > 1 and -> buy", 19, ["expected a number, feature name, function call or '(', found '->'"]),
        ("imbalance + and momentum > 0 -> buy", 13, ["found the keyword 'and'"]),
        ("(imbalance > 0 -> buy", 16, ["expected ')' to close the '(' at column 1, found '->'"]),
        ("imbalance > 0) -> buy", 14, ["unmatched ')'"]),
        ("imbalance > 0 momentum < 1 -> buy", 15, ["expected an operator, 'and', 'or' or '->', found 'momentum'"]),
        ("imbalance > 0 AND momentum > 0 -> buy", 15, ["found 'AND'", "keywords are lowercase: 'and'"]),
        ("imbalance = 0 -> buy", 11, ["unexpected character '='", "did you mean '=='?"]),
        ("imbalance > 0 && momentum > 0 -> buy", 15, ["unexpected character '&'", "use 'and'"]),
        ("!(imbalance > 0) -> buy", 1, ["unexpected character '!'", "use 'not'"]),
        ("imbalance > 1.2.3 -> buy", 13, ["malformed number '1.2.3'"]),
        ("imbalance > 5bps -> buy", 13, ["malformed number '5bps'"]),
        ("imbalance > 1e -> buy", 13, ["malformed number '1e'"]),
        ("imbalance > 1e999 -> buy", 13, ["number 1e999 is out of range"]),
        # functions
        ("sqrt(imbalance) > 1 -> buy", 1, ["unknown function 'sqrt'", "known functions: abs, max, min"]),
        ("ab(imbalance) > 1 -> buy", 1, ["unknown function 'ab'", "did you mean 'abs'?"]),
        ("imbalance(1) > 0 -> buy", 1, ["'imbalance' is a feature, not a function"]),
        ("abs > 1 -> buy", 1, ["function 'abs' needs its arguments in parentheses: abs(x)"]),
        ("abs(imbalance, momentum) > 1 -> buy", 1, ["abs() takes 1 argument (abs(x)), got 2"]),
        ("min(imbalance) > 0 -> buy", 1, ["min() takes 2 arguments (min(x, y)), got 1"]),
        ("max() > 0 -> buy", 1, ["max() takes 2 arguments (max(x, y)), got 0"]),
        ("max(imbalance momentum) > 0 -> buy", 15, ["expected ',' or ')' to close the call max( at column 4"]),
        ("abs(imbalance > 0) > 0 -> buy", 5, ["expected a number as argument 1 of abs(), found a condition"]),
        # arrow and action
        ("imbalance > 0.3", 16, ["missing '->' and an action (buy, sell or flat)"]),
        ("imbalance > 0.3 buy", 17, ["expected '->' before the action 'buy'"]),
        ("-> buy", 1, ["missing condition before '->'"]),
        ("imbalance > 0.3 ->", 19, ["missing action after '->'; expected buy, sell or flat"]),
        ("imbalance > 0.3 -> by", 20, ["unknown action 'by'", "did you mean 'buy'?", "expected buy, sell or flat"]),
        ("imbalance > 0.3 -> BUY", 20, ["unknown action 'BUY'", "did you mean 'buy'?"]),
        ("imbalance > 0.3 -> close", 20, ["unknown action 'close'", "expected buy, sell or flat"]),
        ("imbalance > 0.3 -> 1", 20, ["expected an action (buy, sell or flat) after '->', found '1'"]),
        ("imbalance > 0.3 -> buy sell", 24, ["unexpected 'sell' after the action 'buy'", "attributes"]),
        ("imbalance > 0.3 -> buy -> sell", 24, ["unexpected '->' after the action 'buy'"]),
        # empty
        ("", 1, ["empty rule"]),
        ("   \t ", 1, ["empty rule"]),
        # types: conditions and numbers do not mix; no chains
        ("0 < imbalance < 1 -> buy", 15,
         ["comparison chains like 'a < b < c' are not supported", "write 'a < b and b < c'"]),
        ("imbalance -> buy", 1, ["expected a condition", "before '->', found a number"]),
        ("imbalance and momentum > 0 -> buy", 1, ["expected a condition", "before 'and', found a number"]),
        ("momentum > 0 or trade_flow -> buy", 17, ["expected a condition", "after 'or', found a number"]),
        ("not imbalance -> buy", 5, ["expected a condition", "after 'not', found a number"]),
        ("(imbalance > 0) + 1 > 0 -> buy", 1, ["expected a number on the left of '+', found a condition"]),
        ("(imbalance > 0) == (momentum > 0) -> buy", 1, ["expected a number on the left of '==', found a condition"]),
        ("-(imbalance > 0) -> buy", 2, ["expected a number after unary '-', found a condition"]),
    ],
)  # fmt: skip
def test_compile_when_rule_is_bad_then_error_quotes_rule_points_at_column_and_says_what_was_expected(
    rule: str, column: int, fragments: list[str]
) -> None:
    error = compile_error(rule)
    message = str(error)
    for fragment in fragments:
        assert fragment in message
    assert (error.index, error.rule, error.column) == (1, rule, column)
    assert message.startswith(f"rules[1], column {column}: {error.reason}")
    lines = message.splitlines()
    assert len(lines) == 3
    assert lines[1] == "    " + "".join(" " if c.isspace() else c for c in rule)  # the rule, quoted
    assert lines[2].startswith("    " + " " * (column - 1) + "^")  # the caret under the column
    assert isinstance(error, ValueError)


def test_error_caret_underlines_the_whole_offending_token() -> None:
    error = compile_error("spread_bps < 5 and imbalanse > 0.3 -> buy")
    assert str(error).splitlines()[2] == "    " + " " * 19 + "^" * len("imbalanse")


def test_compile_when_parentheses_nested_too_deeply_then_error() -> None:
    depth = MAX_NESTING + 1
    error = compile_error("(" * depth + "imbalance" + ")" * depth + " > 0 -> buy")
    assert f"nested too deeply (more than {MAX_NESTING} levels)" in str(error)
    assert error.column == MAX_NESTING + 1


def test_compile_when_rule_needs_a_deeper_stack_than_the_limit_then_error() -> None:
    nested = "imbalance"
    for _ in range(MAX_STACK):  # right-nested sums: every level keeps one more value on the stack
        nested = f"imbalance + ({nested})"
    error = compile_error(f"{nested} > 0 -> buy")
    assert f"needs an evaluation stack of {MAX_STACK + 1}, the limit is {MAX_STACK}" in str(error)
    assert error.index == 1


def test_compile_when_rule_chains_too_many_operators_then_error() -> None:
    error = compile_error(" + ".join(["imbalance"] * 500) + " > 0 -> buy")
    assert "rule too long" in str(error)


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        ([], "no rules given"),
        ("imbalance > 0 -> buy", "rules must be a list of rule strings"),
        (["imbalance > 0 -> buy", 3], "rules[1] is not a string"),
    ],
)
def test_compile_when_rule_list_is_bad_then_error(rules: Any, fragment: str) -> None:
    with pytest.raises(RuleError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        compile_rules(rules, FEATURES)


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (("imbalance", "imbalance"), "appears twice"),
        (("spread-bps",), "is not an identifier"),
        (("1st",), "is not an identifier"),
        (("and",), "is reserved"),
        (("abs",), "is reserved"),
        ((), "non-empty tuple"),
    ],
)
def test_compile_when_feature_names_are_bad_then_error(names: tuple[str, ...], fragment: str) -> None:
    with pytest.raises(RuleError, match=fragment):
        compile_rules(["1 > 0 -> buy"], names)


# ---- semantics


@pytest.mark.parametrize(
    "condition",
    [
        "1 + 2 * 3 == 7",  # * before +
        "(1 + 2) * 3 == 9",
        "10 - 4 - 3 == 3",  # left-associative
        "10 - (4 - 3) == 9",
        "64 / 8 / 2 == 4",
        "64 / (8 / 2) == 16",
        "2 * 3 / 6 == 1",
        "-2 * 3 == -6",  # unary minus binds tighter than *
        "- 2 - 3 == -5",
        "2 * -3 == -6",
        "- -3 == 3",
        "-(2 + 3) == -5",
        "1 - -1 == 2",
        "1 + 1 > 1",  # arithmetic before comparison
        "1e-3 == 0.001",
        "2.5E+2 == 250",
        ".5 == 0.5",
        "5. == 5",
        "1 > 0 or 1 > 0 and 0 > 1",  # and before or: true or (true and false)
        "not 1 > 0 or 1 > 0",  # not before or: (not true) or true
        "not (0 > 1 and 0 > 1)",
        "not not 1 > 0",
        "(1 > 0 or 0 > 1) and 1 > 0",
        "1 <= 1 and 1 >= 1 and 1 == 1 and 1 != 2 and 1 < 2 and 2 > 1",
        "imbalance * 2 + momentum == 1.5",  # imbalance 0.5, momentum 0.5
        "abs(-2) == 2",
        "abs(momentum - 1) == 0.5",
        "min(imbalance, 3) == 0.5 and min(3, imbalance) == 0.5",
        "max(imbalance, -3) == 0.5 and max(-3, imbalance) == 0.5",
        "max(min(imbalance, momentum), abs(-0.25)) == 0.5",
        "min(1, 2) + max(1, 2) * 2 == 5",
        "abs(-(imbalance + momentum)) == 1",
    ],
)
def test_condition_when_well_formed_then_python_semantics(condition: str) -> None:
    assert holds(condition, imbalance=0.5, momentum=0.5)


@pytest.mark.parametrize(
    "condition",
    [
        "1 > 0 and 0 > 1",
        "0 > 1 or 0 > 1",
        "not 1 > 0",
        "not 0 > 1 and 0 > 1",  # (not false) and false
        "10 - 4 - 3 == 9",
        "64 / 8 / 2 == 16",
        "2 + 3 * 4 == 20",
    ],
)
def test_condition_when_false_then_no_action(condition: str) -> None:
    assert not holds(condition, imbalance=0.5, momentum=0.5)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # a NaN feature fails every comparison but !=
        ("imbalance > 0", False),
        ("imbalance < 0", False),
        ("imbalance >= 0", False),
        ("imbalance <= 0", False),
        ("imbalance == imbalance", False),
        ("imbalance != imbalance", True),
        ("imbalance != 0", True),
        ("not imbalance > 0", True),  # the documented trap
        ("abs(imbalance) >= 0", False),
        ("-imbalance <= 0", False),
        ("imbalance + 1 > 0", False),
        ("imbalance * 0 == 0", False),
        # min and max propagate NaN whatever the argument order (unlike Python's builtins)
        ("min(imbalance, 1) < 2", False),
        ("min(1, imbalance) < 2", False),
        ("max(imbalance, 1) > 0", False),
        ("max(1, imbalance) > 0", False),
        ("min(imbalance, 1) != min(imbalance, 1)", True),
        # NaN does not leak into the boolean level
        ("imbalance > 0 or 1 > 0", True),
        ("1 > 0 and imbalance > 0", False),
    ],
)
def test_condition_when_feature_is_nan_then_comparisons_false_except_not_equal(
    condition: str, expected: bool
) -> None:
    assert holds(condition, imbalance=NAN) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("1 / 0 > 0", False),
        ("1 / 0 < 0", False),
        ("1 / 0 == 1 / 0", False),
        ("1 / 0 != 1 / 0", True),  # NaN, not inf
        ("-1 / 0 < 0", False),
        ("0 / 0 == 0", False),
        ("1 / -0.0 < 0", False),  # a negative zero is a zero too
        ("momentum / imbalance > 0", False),  # imbalance 0
        ("momentum / (momentum - momentum) > 0", False),
        ("abs(momentum / 0) >= 0", False),
        ("min(momentum / 0, 1) < 2", False),
        ("momentum / 0 > 0 or momentum > 0", True),
        ("1e308 * 10 > 1e308", True),  # overflow is inf, not NaN
        ("trade_flow > 1e308", True),  # an infinite feature compares as infinity
        ("trade_flow - trade_flow != 0", True),  # inf - inf is NaN
        ("1 / trade_flow == 0", True),
    ],
)
def test_condition_when_dividing_by_zero_then_nan(condition: str, expected: bool) -> None:
    assert holds(condition, imbalance=0.0, momentum=2.0, trade_flow=INF) is expected


def test_evaluate_when_several_rules_match_then_first_in_order_wins() -> None:
    rules = [
        "imbalance > 0.5 -> buy",
        "imbalance > 0.2 -> sell",
        "imbalance > 0 -> flat",
        "imbalance > -1 -> buy",
    ]
    compiled = compile_rules(rules, FEATURES)
    assert compiled.evaluate(row(imbalance=0.9)) == ACTION_BUY
    assert compiled.evaluate(row(imbalance=0.3)) == ACTION_SELL
    assert compiled.evaluate(row(imbalance=0.1)) == ACTION_FLAT
    assert compiled.evaluate(row(imbalance=-0.5)) == ACTION_BUY
    assert compiled.evaluate(row(imbalance=-2.0)) == ACTION_NONE
    assert compile_rules(list(reversed(rules)), FEATURES).evaluate(row(imbalance=0.9)) == ACTION_BUY
    assert compile_rules(rules[1:], FEATURES).evaluate(row(imbalance=0.9)) == ACTION_SELL


def test_evaluate_when_brief_examples_then_expected_actions() -> None:
    compiled = compile_rules(
        [
            "spread_bps < 5 and imbalance > 0.3 -> buy",
            "imbalance < -0.3 and (momentum < -0.01 or trade_flow < -0.5) -> sell",
            "abs(imbalance) < 0.05 -> flat",
        ],
        FEATURES,
    )
    assert compiled.evaluate(row(spread_bps=2, imbalance=0.4)) == ACTION_BUY
    assert compiled.evaluate(row(spread_bps=6, imbalance=0.4)) == ACTION_NONE
    assert compiled.evaluate(row(imbalance=-0.4, momentum=-0.02)) == ACTION_SELL
    assert compiled.evaluate(row(imbalance=-0.4, trade_flow=-0.6)) == ACTION_SELL
    assert compiled.evaluate(row(imbalance=-0.4)) == ACTION_NONE
    assert compiled.evaluate(row(imbalance=0.01)) == ACTION_FLAT
    assert compiled.evaluate(row(imbalance=-0.01, spread_bps=NAN)) == ACTION_FLAT


def test_compile_when_rules_compiled_then_arrays_are_flat_read_only_and_consistent() -> None:
    compiled = compile_rules(
        ["spread_bps < 5 and imbalance > -0.3 -> buy", "abs(imbalance) < 5 or momentum > 0 -> flat"], FEATURES
    )
    assert compiled.program.dtype == np.int64 and compiled.program.shape[1] == 2
    assert compiled.consts.dtype == np.float64
    assert compiled.consts.tolist() == [5.0, -0.3, 0.0]  # "-0.3" folded into one constant; 5 shared by the rules
    assert compiled.rule_starts.tolist() == [0, 7, compiled.program.shape[0]]
    assert compiled.actions.tolist() == [ACTION_BUY, ACTION_FLAT]
    ops = compiled.program[:, 0]
    assert ops[3] == OP_AND and compiled.program[3, 1] == 7  # short-circuit jump to the end of its rule
    assert OP_OR in ops and OP_CONST in ops
    assert compiled.max_stack == 2
    for array in (compiled.program, compiled.consts, compiled.rule_starts, compiled.actions):
        assert not array.flags.writeable
    assert compiled.feature_names == FEATURES and compiled.rules[1].endswith("-> flat")


def test_compile_when_feature_names_is_a_list_then_accepted() -> None:
    assert compile_rules(["imbalance > 0 -> sell"], list(FEATURES)).feature_names == FEATURES  # type: ignore[arg-type]


def test_evaluate_when_stack_is_reused_then_results_do_not_depend_on_its_old_contents() -> None:
    compiled = compile_rules(["min(imbalance, momentum) > 0 -> buy", "imbalance < 0 -> sell"], FEATURES)
    stack = compiled.make_stack()
    assert stack.shape == (compiled.max_stack,)
    for imbalance, expected in [(1.0, ACTION_NONE), (-1.0, ACTION_SELL), (1.0, ACTION_NONE), (-1.0, ACTION_SELL)]:
        stack[:] = 123.0  # garbage from a previous call
        assert compiled.evaluate(row(imbalance=imbalance), stack) == expected


def test_evaluate_when_row_or_stack_has_wrong_shape_then_value_error() -> None:
    compiled = compile_rules(["imbalance > 0 -> buy"], FEATURES)
    with pytest.raises(ValueError, match=r"features_row must be float64\[4\]"):
        compiled.evaluate(np.zeros(3))
    with pytest.raises(ValueError, match=r"features_row must be float64\[4\]"):
        compiled.evaluate(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="stack must be"):
        compiled.evaluate(row(), np.zeros(0))


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (ACTION_BUY, (1, 1.0, 1.0, 2500.0)),
        (ACTION_SELL, (-1, -1.0, 1.0, 2500.0)),
        (ACTION_FLAT, (0, 0.0, 1.0, 0.0)),
        (ACTION_NONE, (0, 0.0, 0.0, 0.0)),
    ],
)
def test_rule_signal_when_action_then_loop_tuple_with_configured_holding(
    action: int, expected: tuple[int, float, float, float]
) -> None:
    assert rule_signal(action, 2500.0) == expected


def test_rule_signal_when_chained_after_evaluate_in_jitted_code_then_works() -> None:
    compiled = compile_rules(["imbalance > 0.3 -> buy", "imbalance < -0.3 -> sell"], FEATURES)
    stack = compiled.make_stack()
    signal = _signal_jitted(compiled.program, compiled.consts, compiled.rule_starts, compiled.actions,
                            row(imbalance=-0.5), stack, 750.0)  # fmt: skip
    assert signal == (-1, -1.0, 1.0, 750.0)


@njit(cache=True)
def _signal_jitted(
    program: np.ndarray, consts: np.ndarray, rule_starts: np.ndarray, actions: np.ndarray, features: np.ndarray,
    stack: np.ndarray, holding_ms: float,
) -> tuple[int, float, float, float]:
    return rule_signal(evaluate_rules(program, consts, rule_starts, actions, features, stack), holding_ms)


# ---- property: the jitted evaluator equals a plain Python evaluation of random expression trees

TREE_FEATURES = ("f0", "f1", "f2")
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0]
literals = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=False, allow_infinity=False))
values = st.one_of(st.sampled_from([NAN, INF, -INF]), st.sampled_from(SPECIAL), st.floats())  # NaN often


def _numbers(children: st.SearchStrategy[tuple]) -> st.SearchStrategy[tuple]:
    return st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/"]), children, children),
        st.tuples(st.just("neg"), children),
        st.tuples(st.just("abs"), children),
        st.tuples(st.sampled_from(["min", "max"]), children, children),
    )


numbers = st.recursive(
    st.one_of(st.tuples(st.just("feature"), st.sampled_from(TREE_FEATURES)), st.tuples(st.just("const"), literals)),
    _numbers,
    max_leaves=6,
)
comparisons = st.tuples(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), numbers, numbers)
conditions = st.recursive(
    comparisons,
    lambda children: st.one_of(
        st.tuples(st.sampled_from(["and", "or"]), children, children), st.tuples(st.just("not"), children)
    ),
    max_leaves=4,
)


def py_eval(node: tuple, env: dict[str, float]) -> Any:
    """Evaluate a tree the obvious way, with the documented NaN, division and min/max semantics."""
    op = node[0]
    if op == "feature":
        return env[node[1]]
    if op == "const":
        return node[1]
    if op == "neg":
        return -py_eval(node[1], env)
    if op == "abs":
        return abs(py_eval(node[1], env))
    if op == "not":
        return not py_eval(node[1], env)
    a, b = py_eval(node[1], env), py_eval(node[2], env)
    if op in ("min", "max"):
        if math.isnan(a) or math.isnan(b):
            return NAN
        return min(a, b) if op == "min" else max(a, b)
    return {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: NAN if b == 0 else a / b,
        "<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
        "==": lambda: a == b, "!=": lambda: a != b, "and": lambda: a and b, "or": lambda: a or b,
    }[op]()  # fmt: skip


PRECEDENCE = {"or": 1, "and": 2, "not": 3, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7}
COMPARISON_PRECEDENCE = 4


def _precedence(node: tuple) -> int:
    op = node[0]
    if op == "const":
        return 7 if math.copysign(1.0, node[1]) < 0 else 8  # "-1.5" is a unary minus on 1.5
    if op in ("feature", "abs", "min", "max"):
        return 8
    return PRECEDENCE.get(op, COMPARISON_PRECEDENCE)


def render(node: tuple, minimal: bool) -> str:
    """Write a tree as rule text: fully parenthesized, or with only the parentheses precedence requires."""
    op = node[0]
    if op == "feature":
        return node[1]
    if op == "const":
        return repr(node[1])
    if op in ("abs", "min", "max"):
        return f"{op}({', '.join(render(child, minimal) for child in node[1:])})"

    def wrap(child: tuple, needs_parens: bool) -> str:
        text = render(child, minimal)
        return f"({text})" if needs_parens or not minimal else text

    p = _precedence(node)
    if op == "neg":
        return "-" + wrap(node[1], _precedence(node[1]) < p)
    if op == "not":
        return "not " + wrap(node[1], _precedence(node[1]) < p)
    # binary, left-associative: a right operand of equal precedence needs parentheses (a - (b - c));
    # a comparison's operands are sums or tighter, so they never do
    left = wrap(node[1], _precedence(node[1]) < p)
    right = wrap(node[2], _precedence(node[2]) <= p)
    return f"{left} {op} {right}"


ACTION_CODES = {"buy": ACTION_BUY, "sell": ACTION_SELL, "flat": ACTION_FLAT}


@pytest.fixture(scope="module")
def warm_jit() -> None:
    compile_rules(["f0 > 0 -> buy"], TREE_FEATURES).evaluate(np.zeros(3))


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(st.tuples(conditions, st.sampled_from(sorted(ACTION_CODES))), min_size=1, max_size=4),
    rows=st.lists(st.tuples(values, values, values), min_size=1, max_size=6),
    minimal=st.booleans(),
)
def test_evaluate_when_random_expression_trees_then_jitted_equals_python(
    warm_jit: None, rules: list[tuple[tuple, str]], rows: list[tuple[float, float, float]], minimal: bool
) -> None:
    texts = [f"{render(tree, minimal)} -> {action}" for tree, action in rules]
    compiled = compile_rules(texts, TREE_FEATURES)
    stack = compiled.make_stack()
    for values_row in rows:
        env = dict(zip(TREE_FEATURES, values_row, strict=True))
        expected = next((ACTION_CODES[action] for tree, action in rules if py_eval(tree, env)), ACTION_NONE)
        assert compiled.evaluate(np.array(values_row, np.float64), stack) == expected, (texts, values_row)


def test_render_when_minimal_then_fewer_parentheses_than_full() -> None:
    tree = ("and", (">", ("-", ("feature", "f0"), ("-", ("feature", "f1"), ("const", 1.0))), ("const", -2.0)),
            ("not", ("or", ("<", ("feature", "f2"), ("const", 0.0)), ("==", ("feature", "f0"), ("const", 1.0)))))
    assert render(tree, minimal=True) == "f0 - (f1 - 1.0) > -2.0 and not (f2 < 0.0 or f0 == 1.0)"  # fmt: skip


# ---- cost of one evaluation (measured and reported, not asserted)

BENCH_RULES = [
    "spread_bps < 5 and imbalance > 0.3 -> buy",
    "imbalance < -0.3 and (momentum < -0.01 or trade_flow < -0.5) -> sell",
    "abs(imbalance) < 0.05 -> flat",
    "momentum > 0.02 and min(spread_bps, 10) < 3 and trade_flow > 0.5 -> buy",
    "max(abs(momentum), abs(trade_flow)) > 1 or spread_bps / 2 > 20 -> flat",
]


@njit(cache=True)
def _evaluate_rows(
    program: np.ndarray, consts: np.ndarray, rule_starts: np.ndarray, actions: np.ndarray, rows: np.ndarray,
    stack: np.ndarray, out: np.ndarray,
) -> None:
    for i in range(rows.shape[0]):
        out[i] = evaluate_rules(program, consts, rule_starts, actions, rows[i], stack)


def _ns_per_row(compiled: CompiledRules, rows: np.ndarray, stack: np.ndarray, out: np.ndarray) -> float:
    best = math.inf
    for _ in range(5):
        start = time.perf_counter_ns()
        _evaluate_rows(compiled.program, compiled.consts, compiled.rule_starts, compiled.actions, rows, stack, out)
        best = min(best, (time.perf_counter_ns() - start) / rows.shape[0])
    return best


def test_measure_cost_of_a_five_rule_program(record_property: Any) -> None:
    compiled = compile_rules(BENCH_RULES, FEATURES)
    stack = compiled.make_stack()
    rng = np.random.default_rng(11)
    n = 100_000
    mixed = np.column_stack(
        [rng.uniform(0, 8, n), rng.uniform(-0.6, 0.6, n), rng.normal(0, 0.02, n), rng.normal(0, 0.5, n)]
    )
    no_match = np.tile(row(spread_bps=6.0, imbalance=0.1, momentum=0.0, trade_flow=0.0), (n, 1))  # all 5 run
    out = np.zeros(n, np.int64)
    # warm the JIT
    _evaluate_rows(compiled.program, compiled.consts, compiled.rule_starts, compiled.actions, mixed[:10], stack,
                   out[:10])  # fmt: skip
    ns_mixed = _ns_per_row(compiled, mixed, stack, out)
    for k in range(0, n, 997):  # the batch kernel agrees with the checked wrapper
        assert out[k] == compiled.evaluate(mixed[k])
    fired = {code: int(np.sum(out == code)) for code in (ACTION_NONE, ACTION_BUY, ACTION_SELL, ACTION_FLAT)}
    assert all(count > 0 for count in fired.values())  # the mix exercises every outcome
    ns_no_match = _ns_per_row(compiled, no_match, stack, out)
    assert np.all(out == ACTION_NONE)
    calls = 20_000
    start = time.perf_counter_ns()
    for _ in range(calls):
        evaluate_rules(compiled.program, compiled.consts, compiled.rule_starts, compiled.actions, no_match[0], stack)
    ns_python_call = (time.perf_counter_ns() - start) / calls
    report = {
        "instructions": int(compiled.program.shape[0]),
        "ns_per_eval_mixed": round(ns_mixed, 1),
        "ns_per_eval_no_match": round(ns_no_match, 1),
        "ns_per_call_from_python": round(ns_python_call, 1),
        "actions_mixed": fired,
    }
    for key, value in report.items():
        record_property(key, value)
    print(f"\nrules: 5-rule program cost {report}")
