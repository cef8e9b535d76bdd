"""notebooks/race_session.ipynb: from a race to its meeting and race session, as an analyst."""

from __future__ import annotations

import json

import pytest

from racemap.errors import RacemapError
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
    assert "race 1125: meeting_key 1233, session_key 9673 (bundled snapshot)" in text
    assert "Chinese Grand Prix" in text and "Sprint" not in text


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
