#!/usr/bin/env bash
# CI in one place: .ci/run (`scripts/ci.sh`, both stages) and .github/workflows/ci.yml (one step
# per stage) run this, so the two never drift.
#
#   scripts/ci.sh test    make test: `make lint` (ruff, nbstripout, sqlfluff, dbt docs check),
#                         then pytest (fixture databases on the test server)
#   scripts/ci.sh build   what a user's CI does: load a fresh database (demo races, then
#                         `racemap run --offline`), then a plain `dbt build --profiles-dir .`
#                         with the libpq variables profiles.yml reads
#   scripts/ci.sh         both, in that order
#
# The server is the one scripts/test_server.py decides (one line says which):
# $RACEMAP_TEST_DATABASE_URL, else PGHOST, PGPORT, PGUSER, PGPASSWORD (default 127.0.0.1:5432,
# postgres, no password), else the embedded PostgreSQL in .racemap/test-pgdata when no server
# answers there. Non-interactive: no prompt, no stdin.
set -euo pipefail
cd "$(dirname "$0")/.."

export CI="${CI:-true}"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false DO_NOT_TRACK=1 GX_ANALYTICS_ENABLED=false
BIN=.venv/bin

# The URL of database $1 on the test server (password included: never echoed).
db_url() {
    $BIN/python - "$1" <<'EOF'
import dataclasses, os, sys
from racemap.db import parse_database_url
server = parse_database_url(os.environ["RACEMAP_TEST_DATABASE_URL"])
print(dataclasses.replace(server, dbname=sys.argv[1]).url)
EOF
}

stage_test() {
    # The browser tests need Chromium; the script installs Debian's package when missing.
    if [[ -f scripts/ensure_chromium.sh ]]; then
        bash scripts/ensure_chromium.sh
    fi
    make test </dev/null
}

stage_build() {
    make install </dev/null
    # Under the test server's URL and libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD).
    $BIN/python scripts/test_server.py bash "$0" build-on-test-server </dev/null
}

stage_build_on_test_server() {
    local database="racemap_ci_$(date +%s)_$$"
    local database_url
    database_url="$(db_url "$database")"
    export RACEMAP_CI_SERVER_URL="$RACEMAP_TEST_DATABASE_URL" RACEMAP_CI_DATABASE="$database"
    # Dropped at the end unless KEEP_CI_DATABASE=1 (to look at it after a failure).
    trap '[[ "${KEEP_CI_DATABASE:-0}" == 1 ]] || $BIN/python scripts/ci_database.py drop' EXIT
    $BIN/python scripts/ci_database.py create

    echo "== racemap run --offline --seasons 2023-2025 (the bundled snapshot) on $database"
    DATABASE_URL="$database_url" $BIN/racemap run --offline --seasons 2023-2025 \
        --reports-dir reports/ci </dev/null

    echo "== dbt build --profiles-dir . (PGDATABASE=$database)"
    PGDATABASE="$database" $BIN/dbt build --profiles-dir . --project-dir . </dev/null
}

case "${1:-all}" in
    test) stage_test ;;
    build) stage_build ;;
    build-on-test-server) stage_build_on_test_server ;;
    all) stage_test && stage_build ;;
    *) echo "usage: scripts/ci.sh [test|build|all]" >&2; exit 2 ;;
esac
