"""Shared fixtures for simulator tests: a small protocol-built network, built once per module."""

from __future__ import annotations

import pytest

from micronetwork.sim.scenarios import RunParams


@pytest.fixture(scope="module")
def small_net():  # type: ignore[no-untyped-def]
    sc = RunParams(nodes=120, seed=3, lookups=60).scenario(None)
    sc.build()
    sc.refresh_all()
    return sc
