"""The throwaway database of ``scripts/ci.sh build``: create it with the demo races, or drop it.

Usage: ``python scripts/ci_database.py create|drop``; the server is $RACEMAP_CI_SERVER_URL
(a PostgreSQL URL), the database name $RACEMAP_CI_DATABASE. ``racemap run`` never creates the
races table on a user's database, so the demo application's races are loaded here first.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from psycopg2 import sql

from racemap.db import parse_database_url
from racemap.demo import create_demo_tables


def main(action: str) -> int:
    server = parse_database_url(os.environ["RACEMAP_CI_SERVER_URL"])
    name = os.environ["RACEMAP_CI_DATABASE"]
    conn = server.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        if action == "create":
            cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        else:
            cur.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
    conn.close()
    if action == "create":
        db = dataclasses.replace(server, dbname=name)  # the server's URL options kept
        with db.transaction() as conn:
            count = create_demo_tables(conn)
        print(f"created database {name} with the demo races ({count})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in {"create", "drop"}:
        raise SystemExit("usage: python scripts/ci_database.py create|drop")
    sys.exit(main(sys.argv[1]))
