"""hft: a paper-trading pipeline for crypto markets, four processes over shared memory."""

__version__ = "0.1.0"
