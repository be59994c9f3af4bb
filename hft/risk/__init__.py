"""Pre-trade risk controls: ``config`` (the frozen ``RiskConfig`` and ``build_limits``) and ``engine`` (the
jitted ``risk_check`` and the updates that keep its state). See ``hft.risk.engine`` for the rules."""

from hft.risk.config import RiskConfig, build_limits
from hft.risk.engine import (
    N_RISK_REASONS,
    RISK_BAD_SYMBOL,
    RISK_INVALID_ORDER,
    RISK_KILL_SWITCH,
    RISK_MAX_DRAWDOWN,
    RISK_MAX_NOTIONAL,
    RISK_MAX_ORDER_SIZE,
    RISK_MAX_POSITION,
    RISK_OK,
    RISK_ORDER_RATE,
    RISK_REASON_NAMES,
    RISK_REJECT_STORM,
    RISK_STALE_DATA,
    make_risk_state,
    risk_check,
    risk_on_execution,
    risk_on_market,
    risk_on_order_sent,
    risk_reset_drawdown,
)

__all__ = [
    "N_RISK_REASONS",
    "RISK_BAD_SYMBOL",
    "RISK_INVALID_ORDER",
    "RISK_KILL_SWITCH",
    "RISK_MAX_DRAWDOWN",
    "RISK_MAX_NOTIONAL",
    "RISK_MAX_ORDER_SIZE",
    "RISK_MAX_POSITION",
    "RISK_OK",
    "RISK_ORDER_RATE",
    "RISK_REASON_NAMES",
    "RISK_REJECT_STORM",
    "RISK_STALE_DATA",
    "RiskConfig",
    "build_limits",
    "make_risk_state",
    "risk_check",
    "risk_on_execution",
    "risk_on_market",
    "risk_on_order_sent",
    "risk_reset_drawdown",
]
