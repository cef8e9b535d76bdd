"""notebooks/race_session.ipynb: from a race to its meeting and race session, as an analyst."""

from __future__ import annotations

import json

import pytest
from conftest import query, sample_2026, store_2026

from racemap.errors import RacemapError
from racemap.reporting import race_page
from racemap.reporting.notebooks import execute
from racemap.testing.openf1_server import serve


def _outputs(path) -> str:
    notebook = json.loads(path.read_text())
    texts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            texts.append("".join(output.get("text", "")))
            texts.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_mapped_race_offline(mapped_demo, tmp_path, monkeypatch):
    db, _result, _reports = mapped_demo
    monkeypatch.setenv("DATABASE_URL", db.url)
    executed = execute("race_session", tmp_path, {"race_id": "1125", "offline": True})
    text = _outputs(executed)
    assert "race 1125: meeting_key 1233, session_key 9673 (loaded by racemap run)" in text
    assert "Chinese Grand Prix" in text and "Sprint" not in text
    # No sync yet: the page says which sync loads its data.
    assert "0 weather readings (no race data: run racemap sync --race-id 1125 --sessions race)" in (
        text
    )


def test_a_sprint_page_shows_the_sprint_and_a_weekend_without_one_says_so(
    mapped_demo, tmp_path, monkeypatch
):
    db, _result, _reports = mapped_demo
    monkeypatch.setenv("DATABASE_URL", db.url)
    params = {"race_id": "1125", "offline": True, "session_kind": "sprint"}
    text = _outputs(execute("race_session", tmp_path, params))
    assert (
        "race 1125: meeting_key 1233, session_key 9673 (loaded by racemap run); sprint: 9672"
        in (text)
    )
    assert "sprint session" in text and "2024-04-20T03:00:00+00:00" in text  # the sprint's start
    with pytest.raises(RacemapError, match="not mapped: no sprint session in meeting 1141"):
        execute("race_session", tmp_path, {**params, "race_id": "1098"})
    # The notebook shows the one line, as the command line does, not a traceback (JupyterLab
    # and the copy papermill writes; IPython renders a RacemapError's _render_traceback_).
    executed = json.loads((tmp_path / "notebooks" / "race_session.ipynb").read_text())
    (error,) = [
        o for c in executed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"
    ]
    assert error["ename"] == "NotMapped"
    assert error["traceback"] == ["not mapped: no sprint session in meeting 1141 (race 1098)"]


def test_mapped_race_from_a_local_openf1(mapped_demo, tmp_path, monkeypatch):
    db, _result, _reports = mapped_demo
    monkeypatch.setenv("DATABASE_URL", db.url)
    with serve() as server:
        monkeypatch.setenv("OPENF1_URL", server.base_url)
        executed = execute("race_session", tmp_path, {"race_id": "1142", "offline": False})
        assert server.requests == 2  # one meeting, one session
    text = _outputs(executed)
    assert "race 1142: meeting_key 1250, session_key 9644 (OpenF1 API)" in text
    assert "Las Vegas" in text


def test_unmapped_race_fails_with_its_reason(mapped_demo, tmp_path, monkeypatch):
    db, _result, _reports = mapped_demo
    monkeypatch.setenv("DATABASE_URL", db.url)
    with pytest.raises(RacemapError, match="not mapped: no_meeting"):
        execute("race_session", tmp_path, {"race_id": "1169", "offline": True})


def test_a_race_the_bundled_snapshot_lacks_has_its_page_offline(applied_db, tmp_path, monkeypatch):
    """Miami 2026 (meeting 1284, race session 11280: real records, not in the bundled snapshot)
    as a live run of 2026 would have loaded and mapped it: its race page reads the meeting and
    the session from the raw tables, with no network (it read the bundled snapshot, and failed
    with "OpenF1 has 0 records for meeting 1284")."""
    store_2026(applied_db, "meetings", [sample_2026("miami-2026-sprint__meeting.json")])
    store_2026(applied_db, "sessions", [sample_2026("miami-2026-race__session.json")])
    query(
        applied_db,
        "insert into public.races (id, year, round, circuit_id, name, date, time,"
        " openf1_meeting_key, openf1_session_key) values ('miami-2026', 2026, 6, 'miami',"
        " 'Miami Grand Prix', '2026-05-03', '17:00:00', 1284, 11280)",
    )
    monkeypatch.setenv("DATABASE_URL", applied_db.url)
    html = race_page.render("miami-2026", tmp_path).read_text()
    assert "race miami-2026: meeting_key 1284, session_key 11280 (loaded by racemap run)" in html
    assert "United States" in html and "2026-05-03T17:00:00+00:00" in html  # the records
    # A race whose keys name a meeting no run loaded: one line saying what to do.
    query(applied_db, "update public.races set openf1_meeting_key = 99999 where id = 'miami-2026'")
    loaded = "the raw tables hold 0 records for meeting 99999, expected one: run racemap run"
    with pytest.raises(RacemapError, match=loaded):
        execute("race_session", tmp_path, {"race_id": "miami-2026", "offline": True})


def test_a_notebook_names_its_parameters_where_the_command_line_names_options():
    """The same error reads in a notebook (IPython shows _render_traceback_) with the notebook's
    parameters and OPENF1_URL in place of the command line's options, which an analyst has
    none of; str() stays the command line's line."""
    from racemap.errors import UsageError

    unreachable = RacemapError(
        "OpenF1 meetings for 2024 unreachable for 2 s (ConnectError, 3 attempts): check the "
        "network, or run with --offline (bundled snapshot) or --openf1-url URL"
    )
    assert unreachable._render_traceback_() == [
        "OpenF1 meetings for 2024 unreachable for 2 s (ConnectError, 3 attempts): check the "
        "network, or set offline = True or OPENF1_URL"
    ]
    assert "--offline" in str(unreachable)
    refused = RacemapError(
        "OpenF1 answered HTTP 400 for /v1/sessions: check --openf1-url / OPENF1_URL"
    )
    assert refused._render_traceback_() == [
        "OpenF1 answered HTTP 400 for /v1/sessions: check OPENF1_URL"
    ]
    seasons = UsageError("--seasons '20x4': give a year, a range like 2023-2025, or a list")
    assert seasons._render_traceback_() == [
        "seasons '20x4': give a year, a range like 2023-2025, or a list"
    ]
    plain = RacemapError("not mapped: no_meeting (race 1169)")
    assert plain._render_traceback_() == [str(plain)]
