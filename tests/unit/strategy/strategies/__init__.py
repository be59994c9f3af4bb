"""Strategy modules the tests load like users' own (through hft.strategy.loader)."""
