"""Fixtures for the hybrid tests (helpers in hybrid_helpers.py)."""

from __future__ import annotations

import pytest
from hybrid_helpers import tiny_hybrid

from graft.hybrid import HybridModel


@pytest.fixture(scope="module", params=["concat", "gated", "attention"])
def hybrid_each(request: pytest.FixtureRequest) -> HybridModel:
    """One tiny hybrid per fusion, in eval mode, shared by a module (do not modify)."""
    return tiny_hybrid(request.param).eval()
