"""The benchmark's smoke test carries the ``benchmark`` marker (``-m "not benchmark"``
leaves it out)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "benchmark: runs `python -m tests.benchmarks --quick` (about 20 s)"
    )
