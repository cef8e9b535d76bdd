"""The endpoint registry (racemap/openf1/endpoints.py) and the dbt project agree: what adding
an endpoint takes beside its entry, its record model and its migration (whose raw table
tests/test_migrations.py checks against the entry) is checked here, so a missing piece fails
with what to add instead of a dbt parse error or a model that racemap sync never builds."""

from __future__ import annotations

import re

import yaml

from racemap.openf1 import endpoints
from racemap.paths import PROJECT_DIR

STAGING = PROJECT_DIR / "models" / "staging" / "openf1"


def source_tables() -> set[str]:
    sources = yaml.safe_load((STAGING / "_openf1__sources.yml").read_text(encoding="utf-8"))
    (openf1,) = [s for s in sources["sources"] if s["name"] == "openf1"]
    assert openf1["schema"] == "raw"
    return {table["name"] for table in openf1["tables"]}


def test_every_endpoint_fetched_by_default_is_a_dbt_source():
    tables = source_tables()
    for endpoint in endpoints.REGISTRY:
        if endpoint.on_request:  # car_data, location: fetched when named, read by no model
            continue
        schema, table = endpoint.table.split(".")
        assert schema == "raw" and table in tables, (
            f"{endpoint.name}: add table {table} to models/staging/openf1/_openf1__sources.yml"
        )


def test_every_race_data_endpoint_has_its_staging_model_where_racemap_sync_builds_it():
    """Race data staging models live in models/staging/openf1/race_data/: that folder's tag,
    race_data, is what ``racemap sync`` builds (``dbt build --select tag:race_data``)."""
    documented = yaml.safe_load(
        (STAGING / "race_data" / "_race_data__models.yml").read_text(encoding="utf-8")
    )
    described = {model["name"] for model in documented["models"]}
    for endpoint in endpoints.DEFAULT_RACE_DATA:
        model = STAGING / "race_data" / f"stg_openf1__{endpoint.name}.sql"
        assert model.exists(), f"{endpoint.name}: add {model.relative_to(PROJECT_DIR)}"
        text = model.read_text(encoding="utf-8")
        assert re.search(rf"source\('openf1', 'openf1_{endpoint.name}'\)", text), model
        assert model.stem in described, f"{endpoint.name}: describe {model.stem} in its yml"
