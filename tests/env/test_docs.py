"""The environment page documents every KPI, observation field and scenario the code has."""

from pathlib import Path

import qin_env
from qin_env import core

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "environment.md").read_text()


def test_every_kpi_is_documented():
    assert all(f"`{k}`" in PAGE for k in core.KPI_UNITS)


def test_every_observation_field_is_documented():
    fields = set(core.ORCHESTRATOR_FIELDS) | set(core.AGGREGATOR_FIELDS)
    assert all(f"`{f}`" in PAGE for f in fields)


def test_every_scenario_is_documented():
    assert all(f"`{name}`" in PAGE for name in qin_env.list_scenarios())
