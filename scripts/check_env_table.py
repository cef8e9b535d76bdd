"""The README's table of environment variables, generated from the one definition
(``racemap.settings.Environment`` and ``TOOL_VARIABLES``).

Usage: ``python scripts/check_env_table.py`` rewrites the table between the README's
``<!-- environment-table -->`` and ``<!-- /environment-table -->`` markers; with ``--check``
(``make lint``) it changes nothing and exits 1, saying so in one line, when the table differs.
``--readme PATH`` works on another copy (the tests).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from racemap.settings import environment_table  # noqa: E402

START, END = "<!-- environment-table -->", "<!-- /environment-table -->"


def render(text: str) -> str:
    """``text`` with the table between the markers generated anew."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise SystemExit(f"README: put the table between one {START} and one {END} line")
    head, rest = text.split(START, 1)
    _old, tail = rest.split(END, 1)
    return head + START + "\n" + "\n".join(environment_table()) + "\n" + END + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the table differs")
    parser.add_argument("--readme", type=Path, default=PROJECT_DIR / "README.md")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    wanted = render(text)
    if wanted == text:
        return 0
    if args.check:
        print(
            f"{args.readme.name}: the environment table differs from racemap.settings.Environment:"
            " run python scripts/check_env_table.py",
            file=sys.stderr,
        )
        return 1
    args.readme.write_text(wanted, encoding="utf-8")
    print(f"{args.readme.name}: environment table written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
