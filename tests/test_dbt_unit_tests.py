"""The dbt unit tests (the matching and race data rules: ``unit_tests:`` in the yml beside the
models) are part of ``make test``. A racemap run leaves them out (its vars are the user's, the
unit tests' expectations the project's defaults); CI's plain ``dbt build`` runs them too."""

import yaml

from racemap.mapping import dbt
from racemap.paths import PROJECT_DIR
from racemap.runtime import database_state


def declared_unit_tests() -> set[str]:
    names = set()
    for path in (PROJECT_DIR / "models").rglob("*.yml"):
        document = yaml.safe_load(path.read_text()) or {}
        names |= {test["name"] for test in document.get("unit_tests") or []}
    return names


def test_every_dbt_unit_test_runs_and_passes(applied_db):
    """On a database a run built (dbt reads a unit test's inputs' columns from their relations):
    the race data models, which only a sync builds, are made empty first."""
    with database_state(applied_db):
        dbt.require(dbt.invoke(["run", "--select", dbt.RACE_DATA_TAG, "--empty"]))
        outcome = dbt.invoke(["test", "--select", "test_type:unit"])
    unit_tests = [r for r in outcome.results if r.node.resource_type == "unit_test"]
    # dbt's message of a failed unit test is the table of the rows that differ
    problems = [f"{r.node.name}: {r.message}" for r in unit_tests if str(r.status) != "pass"]
    assert outcome.success and not problems, "\n".join(problems or outcome.failures)
    assert {r.node.name for r in unit_tests} == declared_unit_tests()
    assert {"test_one_race_per_meeting", "test_race_data_checks_name_each_failure"} <= {
        r.node.name for r in unit_tests
    }
