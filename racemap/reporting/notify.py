"""The webhook of a run: one POST when a run needs a person, failed, or changed something.

``racemap run --notify-url URL`` (or ``RACEMAP_NOTIFY_URL``) posts JSON with ``command``
(``run``, or ``sync`` for ``racemap sync``'s own message: a sync needing a person or failed),
``verdict``, ``attention`` (the races needing a person), a summary of ``changes``, ``run_id``,
``reports_dir`` and ``text``, a few lines a Slack incoming webhook shows as they are
(https://api.slack.com/messaging/webhooks: a JSON body with a ``text`` field). A quiet run (ok,
nothing changed) sends nothing. The body never holds a secret: the database is shown with its
password masked, and the secrets the caller names (a run: the database's password, OpenF1's
account and password) are blanked from the body before it is sent. A failed POST is one logged
line and never changes the run's verdict. The URL itself is a secret (Slack's carries its
token), so a log line names its host only.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from racemap import verdict as verdicts
from racemap.errors import blank_secrets

TIMEOUT_SECONDS = 10.0
MAX_LINES = 5  # races and changes shown in ``text``; the JSON lists every race


def should_notify(summary: dict) -> bool:
    changes = summary.get("changes") or {}
    return verdicts.calls_for_a_person(summary.get("verdict")) or bool(changes.get("total"))


def payload(summary: dict, reports_dir: Path) -> dict:
    """The webhook's JSON body for a run's summary."""
    from racemap.reporting.changes import describe
    from racemap.reporting.reports import attention_line

    # A run's attention rows are races (races_needing_attention); a sync's are its lines.
    rows = summary.get("attention") or []
    attention = [
        {"detail": row}
        if isinstance(row, str)
        else {k: row.get(k) for k in ("race_id", "season", "race_name", "kind", "detail", "action")}
        for row in rows
    ]
    changes = summary.get("changes") or {}
    listed = changes.get("list") or []
    verdict = summary.get("verdict")
    command = summary.get("command") or "run"
    head = f"racemap {command} {summary.get('run_id')}: {verdict}"
    if verdict == verdicts.ATTENTION:
        head += f", {len(attention)} race(s) need a person" if command == "run" else ""
    elif verdict == verdicts.FAILED:
        head += f" at {summary.get('stopped_at') or '?'}: {summary.get('error') or ''}"
    lines = [head + f" ({summary.get('database') or 'database'})"]
    lines += [
        "• " + (row if isinstance(row, str) else attention_line(row)) for row in rows[:MAX_LINES]
    ]
    if len(attention) > MAX_LINES:
        lines.append(f"• and {len(attention) - MAX_LINES} more")
    if changes:
        lines.append(describe(changes))
        lines += [
            f"• {c['kind']}: race {c['race_id'] or '-'}, meeting {c['meeting_key'] or '-'}"
            + (f", session {c['session_key']}" if c.get("session_key") else "")
            + f": {c['before'] or '-'} → {c['after'] or '-'}"
            for c in listed[:MAX_LINES]
        ]
    lines.append(f"reports: {reports_dir}")
    return {
        "command": command,
        "run_id": summary.get("run_id"),
        "verdict": verdict,
        "finished_at": summary.get("finished_at"),
        "database": summary.get("database"),
        "stopped_at": summary.get("stopped_at"),
        "error": summary.get("error"),
        "attention": attention,
        "changes": {
            "previous_run_id": changes.get("previous_run_id"),
            "first_run": changes.get("first_run", True),
            "total": changes.get("total", 0),
            "counts": changes.get("counts", {}),
            "list": listed[:50],
        },
        "reports_dir": str(reports_dir),
        "text": "\n".join(lines),
    }


def _blanked(value, secrets):
    """``value`` (the body's JSON before it is written) with the secrets blanked from every
    string in it, and only there: a short secret never breaks the body's names or syntax."""
    if isinstance(value, dict):
        return {key: _blanked(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_blanked(item, secrets) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return blank_secrets(str(value), secrets)  # a path or a time too, as JSON would write it


def notify(url: str | None, summary: dict, reports_dir: Path, secrets=(), log=print) -> bool:
    """POST the run's message to ``url`` when it calls for one; True when one was delivered."""
    if not url or not should_notify(summary):
        return False
    import httpx

    where = urlsplit(url)
    host = f"{where.scheme}://{where.hostname or '?'}" + (f":{where.port}" if where.port else "")
    body = json.dumps(_blanked(payload(summary, Path(reports_dir)), secrets))
    try:
        response = httpx.post(
            url,
            content=body.encode("utf-8"),
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        log(f"notify: POST to {host} failed ({type(exc).__name__}); the run's verdict stands")
        return False
    if response.status_code >= 300:
        log(f"notify: POST to {host} answered HTTP {response.status_code}; the verdict stands")
        return False
    log(f"notify: sent the {summary.get('command') or 'run'}'s message to {host}")
    return True
