"""These tests start pipelines: they wait for the session's background `hft warm` to compile it first."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _compiled_pipeline(warm_pipeline: None) -> None:
    """Every test here starts pipeline processes: their code must be compiled already."""

