"""A rule engine for signals: rules written in the config as text, compiled once, evaluated in numba.

A rule is a condition over named features, an arrow and an action::

    "spread_bps < 5 and imbalance > 0.3 -> buy"
    "imbalance < -0.3 and (momentum < -0.01 or trade_flow < -0.5) -> sell"
    "abs(imbalance) < 0.05 -> flat"

Grammar (EBNF; keywords, function names and actions are lowercase; whitespace is free)::

    rule        = condition "->" action [attributes]       (* attributes: reserved, none exist yet *)
    action      = "buy" | "sell" | "flat"
    condition   = or_expr                                  (* must be a condition, not a number *)
    or_expr     = and_expr { "or" and_expr }
    and_expr    = not_expr { "and" not_expr }
    not_expr    = "not" not_expr | comparison
    comparison  = sum [ ("<" | "<=" | ">" | ">=" | "==" | "!=") sum ]   (* no chains: a < b < c is an error *)
    sum         = product { ("+" | "-") product }          (* left-associative *)
    product     = unary { ("*" | "/") unary }              (* left-associative *)
    unary       = "-" unary | primary
    primary     = number | feature | function "(" or_expr { "," or_expr } ")" | "(" or_expr ")"
    function    = "abs" (1 argument) | "min" (2) | "max" (2)
    number      = digits ["." [digits]] [exponent] | "." digits [exponent]      (* 5, 0.3, .5, 1e-3, 2.5E+2 *)

Precedence, loosest first, is Python's: ``or``, ``and``, ``not``, comparisons, ``+ -``, ``* /``, unary ``-``.
Every expression is typed: ``and``/``or``/``not`` take conditions, comparisons, arithmetic and functions take
numbers, and the whole condition must be a condition (``imbalance -> buy`` is an error, not "imbalance != 0").

Semantics
---------
* **First match wins.** Rules are evaluated in the order given; the action of the first rule whose condition
  is true is returned, later rules are not evaluated. If none holds the result is ``ACTION_NONE``. Put the
  specific rules first and a catch-all (if any) last.
* **NaN**: a NaN operand makes ``< <= > >= ==`` false and ``!=`` true (IEEE 754, as in Python), so a missing
  feature (NaN) fails every comparison except ``!=``. Beware that ``not (x > 0)`` is therefore true for NaN.
  Arithmetic, ``abs``, ``min`` and ``max`` propagate NaN (``min(nan, 1)`` and ``min(1, nan)`` are both NaN,
  unlike Python's builtin, which depends on the argument order).
* **Division by zero** (``x / 0`` and ``x / -0``, any ``x``) gives NaN instead of raising or giving inf:
  a ratio with a zero denominator is "undefined", so every comparison on it except ``!=`` is false.
  Overflow gives ``±inf`` as usual (``1e308 * 10 > 1e308`` is true).
* ``and``/``or`` short-circuit. Expressions are pure and cannot fail, so the result equals a full evaluation.

Compiled form
-------------
``compile_rules`` parses every rule once, in Python, and emits one flat postfix program for all rules:

* ``program``: ``int64[n_instructions, 2]``; column 0 is the opcode (``OP_*``), column 1 its argument: the
  feature index for ``OP_FEATURE``, the index into ``consts`` for ``OP_CONST``, the absolute jump target for
  ``OP_AND``/``OP_OR`` (jump if false/true and keep the value, else pop it), 0 otherwise.
* ``consts``: ``float64[n_consts]``, the literals (a negated literal is folded into one constant).
* ``rule_starts``: ``int64[n_rules + 1]``; rule ``k`` is ``program[rule_starts[k]:rule_starts[k + 1]]``.
* ``actions``: ``int64[n_rules]``, ``ACTION_BUY``, ``ACTION_SELL`` or ``ACTION_FLAT``.

Values live on a float64 stack; conditions are 1.0 (true) or 0.0 (false). The deepest stack any rule needs is
computed at compile time (``CompiledRules.max_stack``, at most ``MAX_STACK``); the kernel gets a stack array
made once by the caller, so evaluation allocates nothing. A stack is scratch space: one caller at a time.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

ACTION_NONE = 0
ACTION_BUY = 1
ACTION_SELL = -1
ACTION_FLAT = 2  # close the position

OP_FEATURE = 1
OP_CONST = 2
OP_ADD = 3
OP_SUB = 4
OP_MUL = 5
OP_DIV = 6
OP_NEG = 7
OP_ABS = 8
OP_MIN = 9
OP_MAX = 10
OP_LT = 11
OP_LE = 12
OP_GT = 13
OP_GE = 14
OP_EQ = 15
OP_NE = 16
OP_NOT = 17
OP_AND = 18  # jump to arg if the top is false (keep it), else pop it
OP_OR = 19  # jump to arg if the top is true (keep it), else pop it
N_OPS = 20

MAX_STACK = 32  # deepest evaluation stack a rule may need
MAX_NESTING = 40  # parentheses, function calls, "not" and unary "-" nested inside each other
MAX_TREE_HEIGHT = 200  # longest chain of operators in one rule (keeps the compiler's recursion bounded)

ACTIONS = {"buy": ACTION_BUY, "sell": ACTION_SELL, "flat": ACTION_FLAT}
FUNCTIONS = {"abs": (OP_ABS, 1), "min": (OP_MIN, 2), "max": (OP_MAX, 2)}
KEYWORDS = ("and", "or", "not")
_COMPARISONS = {"<": OP_LT, "<=": OP_LE, ">": OP_GT, ">=": OP_GE, "==": OP_EQ, "!=": OP_NE}
_ARITHMETIC = {"+": OP_ADD, "-": OP_SUB, "*": OP_MUL, "/": OP_DIV}
_ACTION_NAMES = {code: name for name, code in ACTIONS.items()}

# stack effect of each opcode on the fall-through path (the jumps keep the value they would otherwise pop)
_STACK_EFFECT = {
    OP_FEATURE: 1, OP_CONST: 1, OP_NEG: 0, OP_ABS: 0, OP_NOT: 0, OP_AND: -1, OP_OR: -1,
    **dict.fromkeys((OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MIN, OP_MAX), -1),
    **dict.fromkeys(_COMPARISONS.values(), -1),
}  # fmt: skip
assert len(_STACK_EFFECT) == N_OPS - 1

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>->|<=|>=|==|!=|[<>+\-*/(),])",
    re.ASCII,
)
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]+")
_CHARACTER_HINTS = {
    "=": "did you mean '=='?",
    "!": "use 'not' for negation or '!=' for inequality",
    "&": "use 'and'",
    "|": "use 'or'",
    "~": "use 'not'",
}
_OPERAND = "a number, feature name, function call or '('"

NUM = "number"
BOOL = "condition"


class RuleError(ValueError):
    """A rule (or the feature list) cannot be compiled; the message quotes the rule and points at the column.

    A plain ValueError with no dependency on ``hft.config``, so the config module may import this one to
    validate rules at load time. Attributes: ``index`` (0-based position in the rule list, or None), ``rule``
    (its text, or None), ``column`` (1-based, or None), ``reason`` (the message without the quoted rule).
    """

    def __init__(
        self, reason: str, rule: str | None = None, index: int | None = None, column: int | None = None,
        width: int = 1,
    ) -> None:
        self.reason = reason
        self.rule = rule
        self.index = index
        self.column = column
        super().__init__(_format_error(reason, rule, index, column, width))


def _format_error(reason: str, rule: str | None, index: int | None, column: int | None, width: int) -> str:
    if rule is None:
        return reason
    where = f"rules[{index}]" + (f", column {column}" if column is not None else "")
    shown = "".join(" " if c.isspace() else c for c in rule)  # tabs and newlines: one column each
    lines = [f"{where}: {reason}", f"    {shown}"]
    if column is not None:
        lines.append("    " + " " * (column - 1) + "^" * max(1, width))
    return "\n".join(lines)


def _suggest(name: str, candidates: Sequence[str]) -> str:
    lowered = [c for c in candidates if c == name.lower()]
    close = lowered or difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "op", "end"
    text: str
    col: int  # 0-based


@dataclass(frozen=True)
class _Node:
    op: int  # OP_*: what the node emits
    kind: str  # NUM or BOOL
    col: int  # span in the rule text, for error messages
    end: int
    children: tuple[_Node, ...] = ()
    arg: float = 0.0  # the feature index (OP_FEATURE) or the literal (OP_CONST)
    height: int = 1


def _node(op: int, kind: str, col: int, end: int, children: tuple[_Node, ...] = (), arg: float = 0.0) -> _Node:
    return _Node(op, kind, col, end, children, arg, 1 + max((c.height for c in children), default=0))


@dataclass(frozen=True)
class _ParsedRule:
    condition: _Node
    action: int
    attributes: dict[str, float] = field(default_factory=dict)  # per-rule attributes, when some exist


class _Parser:
    """Recursive descent over one rule's tokens; every error names the rule, the column and what was expected."""

    def __init__(self, text: str, index: int, features: dict[str, int]) -> None:
        self.text = text
        self.index = index
        self.features = features
        self.tokens = self._tokenize()
        self.pos = 0
        self.nesting = 0

    # ---- errors and tokens

    def fail(self, reason: str, col: int, width: int = 1) -> RuleError:
        return RuleError(reason, self.text, self.index, col + 1, width)

    def _tokenize(self) -> list[_Token]:
        tokens = []
        pos = 0
        text = self.text
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None:
                char = text[pos]
                hint = _CHARACTER_HINTS.get(char)
                raise self.fail(f"unexpected character {char!r}" + (f"; {hint}" if hint else ""), pos)
            kind = match.lastgroup
            assert kind is not None
            end = match.end()
            if kind == "number":
                tail = _NUMBER_TAIL.match(text, end)
                if tail is not None:
                    bad = text[pos : tail.end()]
                    raise self.fail(f"malformed number {bad!r}", pos, len(bad))
                if not math.isfinite(float(match.group())):
                    raise self.fail(f"number {match.group()} is out of range", pos, end - pos)
            if kind != "space":
                tokens.append(_Token(kind, match.group(), pos))
            pos = end
        tokens.append(_Token("end", "", len(text)))
        return tokens

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def next(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token.kind in ("op", "name") and token.text in texts

    def found(self, token: _Token) -> str:
        return "the end of the rule" if token.kind == "end" else f"'{token.text}'"

    def enter(self, token: _Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.fail(f"expression nested too deeply (more than {MAX_NESTING} levels)", token.col)

    def make(self, op: int, kind: str, col: int, end: int, children: tuple[_Node, ...] = (), arg: float = 0.0) -> _Node:
        node = _node(op, kind, col, end, children, arg)
        if node.height > MAX_TREE_HEIGHT:
            raise self.fail(f"rule too long: more than {MAX_TREE_HEIGHT} chained operators", col, end - col)
        return node

    def need(self, node: _Node, kind: str, where: str) -> None:
        if node.kind == kind:
            return
        if kind == BOOL:
            reason = (f"expected a condition (a comparison, or conditions joined by and/or/not) {where}, "
                      "found a number")
        else:
            reason = f"expected a number {where}, found a condition"
        raise self.fail(reason, node.col, node.end - node.col)

    # ---- grammar

    def parse_rule(self) -> _ParsedRule:
        if not self.text.strip():
            raise self.fail("empty rule; expected '<condition> -> <action>'", 0)
        if self.at("->"):
            raise self.fail("missing condition before '->'", self.peek().col, 2)
        condition = self.parse_or()
        token = self.peek()
        if not self.at("->"):
            if token.kind == "end":
                raise self.fail("missing '->' and an action (buy, sell or flat) at the end of the rule", token.col)
            if token.kind == "name" and token.text in ACTIONS:
                raise self.fail(f"expected '->' before the action '{token.text}'", token.col, len(token.text))
            if token.text == ")":
                raise self.fail("unmatched ')'", token.col)
            hint = f" (keywords are lowercase: '{token.text.lower()}')" if token.text.lower() in KEYWORDS else ""
            raise self.fail(f"expected an operator, 'and', 'or' or '->', found {self.found(token)}{hint}",
                            token.col, max(1, len(token.text)))
        self.need(condition, BOOL, "before '->'")
        self.next()
        token = self.next()
        if token.kind == "end":
            raise self.fail("missing action after '->'; expected buy, sell or flat", token.col)
        if token.kind != "name":
            raise self.fail(f"expected an action (buy, sell or flat) after '->', found {self.found(token)}",
                            token.col, len(token.text))
        if token.text not in ACTIONS:
            reason = _join(f"unknown action '{token.text}'", _suggest(token.text, tuple(ACTIONS)))
            reason += " (expected buy, sell or flat)"
            raise self.fail(reason, token.col, len(token.text))
        return _ParsedRule(condition, ACTIONS[token.text], self.parse_attributes(token.text))

    def parse_attributes(self, action: str) -> dict[str, float]:
        """Parse what follows the action: nothing yet. Per-rule attributes (say a holding period) go here."""
        token = self.peek()
        if token.kind != "end":
            raise self.fail(f"unexpected {self.found(token)} after the action '{action}'; expected the end of the "
                            "rule (per-rule attributes are not supported yet)", token.col, len(token.text))
        return {}

    def parse_or(self) -> _Node:
        left = self.parse_and()
        while self.at("or"):
            self.need(left, BOOL, "before 'or'")
            self.next()
            right = self.parse_and()
            self.need(right, BOOL, "after 'or'")
            left = self.make(OP_OR, BOOL, left.col, right.end, (left, right))
        return left

    def parse_and(self) -> _Node:
        left = self.parse_not()
        while self.at("and"):
            self.need(left, BOOL, "before 'and'")
            self.next()
            right = self.parse_not()
            self.need(right, BOOL, "after 'and'")
            left = self.make(OP_AND, BOOL, left.col, right.end, (left, right))
        return left

    def parse_not(self) -> _Node:
        if not self.at("not"):
            return self.parse_comparison()
        token = self.next()
        self.enter(token)
        operand = self.parse_not()
        self.nesting -= 1
        self.need(operand, BOOL, "after 'not'")
        return self.make(OP_NOT, BOOL, token.col, operand.end, (operand,))

    def parse_comparison(self) -> _Node:
        left = self.parse_sum()
        if not self.at(*_COMPARISONS):
            return left
        token = self.next()
        self.need(left, NUM, f"on the left of '{token.text}'")
        right = self.parse_sum()
        self.need(right, NUM, f"on the right of '{token.text}'")
        if self.at(*_COMPARISONS):
            chained = self.peek()
            raise self.fail("comparison chains like 'a < b < c' are not supported; write 'a < b and b < c'",
                            chained.col, len(chained.text))
        return self.make(_COMPARISONS[token.text], BOOL, left.col, right.end, (left, right))

    def parse_sum(self) -> _Node:
        left = self.parse_product()
        while self.at("+", "-"):
            token = self.next()
            self.need(left, NUM, f"on the left of '{token.text}'")
            right = self.parse_product()
            self.need(right, NUM, f"on the right of '{token.text}'")
            left = self.make(_ARITHMETIC[token.text], NUM, left.col, right.end, (left, right))
        return left

    def parse_product(self) -> _Node:
        left = self.parse_unary()
        while self.at("*", "/"):
            token = self.next()
            self.need(left, NUM, f"on the left of '{token.text}'")
            right = self.parse_unary()
            self.need(right, NUM, f"on the right of '{token.text}'")
            left = self.make(_ARITHMETIC[token.text], NUM, left.col, right.end, (left, right))
        return left

    def parse_unary(self) -> _Node:
        if not self.at("-"):
            return self.parse_primary()
        token = self.next()
        self.enter(token)
        operand = self.parse_unary()
        self.nesting -= 1
        self.need(operand, NUM, "after unary '-'")
        if operand.op == OP_CONST:  # fold: "-0.3" is one constant
            return self.make(OP_CONST, NUM, token.col, operand.end, arg=-operand.arg)
        return self.make(OP_NEG, NUM, token.col, operand.end, (operand,))

    def parse_primary(self) -> _Node:
        token = self.peek()
        if token.kind == "number":
            self.next()
            return self.make(OP_CONST, NUM, token.col, token.col + len(token.text), arg=float(token.text))
        if token.kind == "name":
            return self.parse_name()
        if token.text == "(":
            self.next()
            self.enter(token)
            inner = self.parse_or()
            self.nesting -= 1
            close = self.next()
            if close.text != ")":
                raise self.fail(f"expected ')' to close the '(' at column {token.col + 1}, found {self.found(close)}",
                                close.col, max(1, len(close.text)))
            return _Node(inner.op, inner.kind, token.col, close.col + 1, inner.children, inner.arg, inner.height)
        raise self.fail(f"expected {_OPERAND}, found {self.found(token)}", token.col, max(1, len(token.text)))

    def parse_name(self) -> _Node:
        token = self.next()
        name = token.text
        end = token.col + len(name)
        if name in KEYWORDS:
            raise self.fail(f"expected {_OPERAND}, found the keyword '{name}'", token.col, len(name))
        if self.at("("):
            return self.parse_call(token)
        if name in self.features:
            return self.make(OP_FEATURE, NUM, token.col, end, arg=float(self.features[name]))
        if name in FUNCTIONS:
            raise self.fail(f"function '{name}' needs its arguments in parentheses: {_signature(name)}",
                            token.col, len(name))
        reason = _join(f"unknown feature '{name}'", _suggest(name, tuple(self.features)),
                       "an action must follow '->'" if name in ACTIONS else "")
        reason += f" (known features: {', '.join(self.features)})"
        raise self.fail(reason, token.col, len(name))

    def parse_call(self, name_token: _Token) -> _Node:
        name = name_token.text
        if name not in FUNCTIONS:
            if name in self.features:
                raise self.fail(f"'{name}' is a feature, not a function", name_token.col, len(name))
            reason = _join(f"unknown function '{name}'", _suggest(name, tuple(FUNCTIONS)))
            reason += f" (known functions: {', '.join(sorted(FUNCTIONS))})"
            raise self.fail(reason, name_token.col, len(name))
        opening = self.next()
        self.enter(opening)
        args: list[_Node] = []
        if not self.at(")"):
            while True:
                arg = self.parse_or()
                self.need(arg, NUM, f"as argument {len(args) + 1} of {name}()")
                args.append(arg)
                if not self.at(","):
                    break
                self.next()
        self.nesting -= 1
        close = self.next()
        if close.text != ")":
            raise self.fail(f"expected ',' or ')' to close the call {name}( at column {opening.col + 1}, "
                            f"found {self.found(close)}", close.col, max(1, len(close.text)))
        op, arity = FUNCTIONS[name]
        if len(args) != arity:
            raise self.fail(f"{name}() takes {arity} argument{'s' if arity > 1 else ''} ({_signature(name)}), "
                            f"got {len(args)}", name_token.col, close.col + 1 - name_token.col)
        return self.make(op, NUM, name_token.col, close.col + 1, tuple(args))


def _signature(name: str) -> str:
    return "abs(x)" if name == "abs" else f"{name}(x, y)"


# ---- code generation


class _Emitter:
    def __init__(self) -> None:
        self.code: list[list[int]] = []
        self.consts: list[float] = []
        self.const_slots: dict[str, int] = {}  # keyed by float.hex: 0.0 and -0.0 stay distinct

    def emit(self, node: _Node) -> None:
        if node.op == OP_FEATURE:
            self.code.append([OP_FEATURE, int(node.arg)])
        elif node.op == OP_CONST:
            key = node.arg.hex()
            if key not in self.const_slots:
                self.const_slots[key] = len(self.consts)
                self.consts.append(node.arg)
            self.code.append([OP_CONST, self.const_slots[key]])
        elif node.op in (OP_AND, OP_OR):
            self.emit(node.children[0])
            jump = len(self.code)
            self.code.append([node.op, -1])
            self.emit(node.children[1])
            self.code[jump][1] = len(self.code)  # past the right operand: the rule's end or the enclosing op
        else:
            for child in node.children:
                self.emit(child)
            self.code.append([node.op, 0])


def _stack_depth(code: list[list[int]]) -> int:
    """Return the deepest stack the code needs (the jumps leave the depth the fall-through path reaches)."""
    depth = deepest = 0
    for op, _ in code:
        depth += _STACK_EFFECT[op]
        deepest = max(deepest, depth)
    assert depth == 1, "a rule must leave exactly its condition on the stack"
    return deepest


@dataclass(frozen=True, eq=False)
class CompiledRules:
    """The rules as arrays for ``evaluate_rules`` (read-only), plus what they were compiled from."""

    rules: tuple[str, ...]
    feature_names: tuple[str, ...]
    program: np.ndarray  # int64[n, 2]: opcode, argument
    consts: np.ndarray  # float64[n_consts]
    rule_starts: np.ndarray  # int64[n_rules + 1]
    actions: np.ndarray  # int64[n_rules]
    max_stack: int  # deepest stack any rule needs

    def __post_init__(self) -> None:
        n_rules = len(self.rules)
        n = self.program.shape[0]
        assert self.program.dtype == np.int64 and self.program.ndim == 2 and self.program.shape[1] == 2
        assert self.consts.dtype == np.float64 and self.consts.ndim == 1
        assert self.rule_starts.dtype == np.int64 and self.rule_starts.shape == (n_rules + 1,)
        assert self.actions.dtype == np.int64 and self.actions.shape == (n_rules,)
        assert self.rule_starts[0] == 0 and self.rule_starts[-1] == n and np.all(np.diff(self.rule_starts) > 0)
        assert np.all(np.isin(self.actions, (ACTION_BUY, ACTION_SELL, ACTION_FLAT)))
        assert 1 <= self.max_stack <= MAX_STACK
        ops, args = self.program[:, 0], self.program[:, 1]
        assert np.all((ops >= 1) & (ops < N_OPS))
        assert np.all((args[ops == OP_FEATURE] >= 0) & (args[ops == OP_FEATURE] < len(self.feature_names)))
        assert np.all((args[ops == OP_CONST] >= 0) & (args[ops == OP_CONST] < self.consts.shape[0]))
        for k in range(n_rules):  # a jump stays inside its rule (it may land on the rule's end)
            start, end = self.rule_starts[k], self.rule_starts[k + 1]
            rule_ops, rule_args = ops[start:end], args[start:end]
            jumps = (rule_ops == OP_AND) | (rule_ops == OP_OR)
            positions = np.arange(start, end)[jumps]
            assert np.all((rule_args[jumps] > positions) & (rule_args[jumps] <= end))
        for array in (self.program, self.consts, self.rule_starts, self.actions):
            array.flags.writeable = False

    def make_stack(self) -> np.ndarray:
        """Allocate an evaluation stack once, outside the hot path; reuse it for every evaluation."""
        return np.zeros(self.max_stack, np.float64)

    def evaluate(self, features_row: np.ndarray, stack: np.ndarray | None = None) -> int:
        """Check the arguments, then run ``evaluate_rules``: for tests and tools, not for the hot path."""
        row = np.asarray(features_row)
        if row.dtype != np.float64 or row.shape != (len(self.feature_names),):
            raise ValueError(f"features_row must be float64[{len(self.feature_names)}] in the order "
                             f"{self.feature_names}, got {row.dtype}{list(row.shape)}")
        if stack is None:
            stack = self.make_stack()
        if stack.dtype != np.float64 or stack.ndim != 1 or stack.shape[0] < self.max_stack:
            raise ValueError(f"stack must be float64[>= {self.max_stack}], got {stack.dtype}{list(stack.shape)}")
        return int(evaluate_rules(self.program, self.consts, self.rule_starts, self.actions, row, stack))

    def action_name(self, action: int) -> str:
        """Name an action code ("none" for ACTION_NONE), for logs and reports."""
        return _ACTION_NAMES.get(action, "none")


def _check_feature_names(feature_names: tuple[str, ...]) -> None:
    if not isinstance(feature_names, tuple) or not feature_names:
        raise RuleError(f"feature_names must be a non-empty tuple of names, got {feature_names!r}")
    seen: set[str] = set()
    for name in feature_names:
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            raise RuleError(f"feature name {name!r} is not an identifier (letters, digits, '_'; no leading digit)")
        if name in KEYWORDS or name in FUNCTIONS:
            raise RuleError(f"feature name {name!r} is reserved (keywords: {', '.join(KEYWORDS)}; "
                            f"functions: {', '.join(sorted(FUNCTIONS))})")
        if name in seen:
            raise RuleError(f"feature name {name!r} appears twice in {feature_names}")
        seen.add(name)


def compile_rules(rules: Sequence[str], feature_names: tuple[str, ...]) -> CompiledRules:
    """Parse and compile the rules once, so the hot path only runs a flat program over a feature row.

    Parameters
    ----------
    rules
        Rule texts (``"<condition> -> buy|sell|flat"``), evaluated in this order: the first match wins.
    feature_names
        The names rules may use, in the order of the feature row's columns.

    Raises
    ------
    RuleError
        On the first rule that does not compile, quoting it and pointing at the offending column.
    """
    if isinstance(feature_names, list):
        feature_names = tuple(feature_names)
    _check_feature_names(feature_names)
    if isinstance(rules, str) or not isinstance(rules, Sequence):
        raise RuleError(f"rules must be a list of rule strings, got {type(rules).__name__}: {rules!r}")
    if len(rules) == 0:
        raise RuleError("no rules given: the rule signal would never fire")
    features = {name: k for k, name in enumerate(feature_names)}
    emitter = _Emitter()
    starts = [0]
    actions = []
    max_stack = 1
    for index, text in enumerate(rules):
        if not isinstance(text, str):
            raise RuleError(f"rules[{index}] is not a string: {text!r}")
        parsed = _Parser(text, index, features).parse_rule()
        emitter.emit(parsed.condition)
        depth = _stack_depth(emitter.code[starts[-1] :])
        if depth > MAX_STACK:
            raise RuleError(f"rule too deeply nested: it needs an evaluation stack of {depth}, the limit is "
                            f"{MAX_STACK}; split it or flatten its parentheses", text, index)
        max_stack = max(max_stack, depth)
        starts.append(len(emitter.code))
        actions.append(parsed.action)
    return CompiledRules(
        rules=tuple(rules),
        feature_names=feature_names,
        program=np.array(emitter.code, np.int64).reshape(-1, 2),
        consts=np.array(emitter.consts, np.float64),
        rule_starts=np.array(starts, np.int64),
        actions=np.array(actions, np.int64),
        max_stack=max_stack,
    )


# ---- kernels


@njit(cache=True)
def evaluate_rules(
    program: np.ndarray,
    consts: np.ndarray,
    rule_starts: np.ndarray,
    actions: np.ndarray,
    features_row: np.ndarray,
    stack: np.ndarray,
) -> int:
    """Return the action of the first rule whose condition holds on ``features_row``, else ACTION_NONE.

    ``stack`` is scratch space of at least ``CompiledRules.max_stack`` float64s, made once by the caller (one
    caller at a time per stack). The arrays must come from ``compile_rules``: nothing is checked here.
    """
    nan = np.nan
    for rule in range(actions.shape[0]):
        pc = rule_starts[rule]
        end = rule_starts[rule + 1]
        sp = 0  # number of values on the stack
        while pc < end:
            op = program[pc, 0]
            arg = program[pc, 1]
            pc += 1
            if op == OP_FEATURE:
                stack[sp] = features_row[arg]
                sp += 1
            elif op == OP_CONST:
                stack[sp] = consts[arg]
                sp += 1
            elif op == OP_AND:
                if stack[sp - 1] == 0.0:
                    pc = arg
                else:
                    sp -= 1
            elif op == OP_OR:
                if stack[sp - 1] != 0.0:
                    pc = arg
                else:
                    sp -= 1
            elif op == OP_NOT:
                stack[sp - 1] = 1.0 if stack[sp - 1] == 0.0 else 0.0
            elif op == OP_NEG:
                stack[sp - 1] = -stack[sp - 1]
            elif op == OP_ABS:
                stack[sp - 1] = abs(stack[sp - 1])
            else:  # binary: pop b, replace a by (a op b)
                sp -= 1
                a = stack[sp - 1]
                b = stack[sp]
                if op == OP_LT:
                    r = 1.0 if a < b else 0.0
                elif op == OP_GT:
                    r = 1.0 if a > b else 0.0
                elif op == OP_LE:
                    r = 1.0 if a <= b else 0.0
                elif op == OP_GE:
                    r = 1.0 if a >= b else 0.0
                elif op == OP_EQ:
                    r = 1.0 if a == b else 0.0
                elif op == OP_NE:
                    r = 1.0 if a != b else 0.0
                elif op == OP_ADD:
                    r = a + b
                elif op == OP_SUB:
                    r = a - b
                elif op == OP_MUL:
                    r = a * b
                elif op == OP_DIV:
                    r = nan if b == 0.0 else a / b
                elif op == OP_MIN:
                    r = nan if (a != a or b != b) else (b if b < a else a)
                elif op == OP_MAX:
                    r = nan if (a != a or b != b) else (b if b > a else a)
                else:
                    return ACTION_NONE  # not a compiled program: never trade on it
                stack[sp - 1] = r
        if stack[0] != 0.0:
            return actions[rule]
    return ACTION_NONE


@njit(cache=True)
def rule_signal(action: int, holding_ms: float) -> tuple[int, float, float, float]:
    """Map a rule action to the loop's ``(direction, strength, confidence, holding_ms)``.

    Rules are either true or false, so a buy or sell is at full strength and confidence; strength carries the
    direction's sign as in ``hft.strategy.signal`` (buy +1.0, sell -1.0). ``flat`` is
    ``(0, 0.0, 1.0, 0.0)``: no new exposure, but a decision (confidence 1.0) unlike no match
    ``(0, 0.0, 0.0, 0.0)``. Direction 0 alone does not close a position before its holding period ends, so a
    loop that honours ``flat`` at once must test ``action == ACTION_FLAT`` itself.
    """
    if action == ACTION_BUY:
        return 1, 1.0, 1.0, holding_ms
    if action == ACTION_SELL:
        return -1, -1.0, 1.0, holding_ms
    if action == ACTION_FLAT:
        return 0, 0.0, 1.0, 0.0
    return 0, 0.0, 0.0, 0.0
