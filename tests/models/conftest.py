"""Fixtures for the model tests; the helpers live in model_helpers.py (a unique module name)."""

from model_helpers import tiny  # noqa: F401  (registers the fixture)
