#!/usr/bin/env bash
# CI in one place: .ci/run (`scripts/ci.sh`, both stages) and .github/workflows/ci.yml (one step
# per stage) run this, so the two never drift.
#
#   scripts/ci.sh test    make test: `make lint` (ruff, nbstripout, sqlfluff, dbt docs check),
#                         then pytest (fixture databases on the PostgreSQL server)
#   scripts/ci.sh build   what a user's CI does: load a fresh database (demo races, then
#                         `racemap run --offline`), then a plain `dbt build --profiles-dir .`
#                         with the libpq variables profiles.yml reads
#   scripts/ci.sh         both, in that order
#
# The server comes from PGHOST, PGPORT, PGUSER, PGPASSWORD (default 127.0.0.1:5432, postgres,
# no password). Non-interactive: no prompt, no stdin.
set -euo pipefail
cd "$(dirname "$0")/.."

export CI="${CI:-true}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export PGPASSWORD="${PGPASSWORD:-}"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false DO_NOT_TRACK=1 GX_ANALYTICS_ENABLED=false
BIN=.venv/bin

# A libpq URL for database $1 from the PG* variables (the password URL-encoded, never echoed).
pg_url() {
    python3 - "$1" <<'EOF'
import os, sys
from urllib.parse import quote
password = os.environ.get("PGPASSWORD") or ""
auth = quote(os.environ["PGUSER"], safe="") + (":" + quote(password, safe="") if password else "")
print(f"postgresql://{auth}@{os.environ['PGHOST']}:{os.environ['PGPORT']}/{sys.argv[1]}")
EOF
}

stage_test() {
    # The browser tests need Chromium; the script installs Debian's package when missing.
    if [[ -f scripts/ensure_chromium.sh ]]; then
        bash scripts/ensure_chromium.sh
    fi
    RACEMAP_TEST_DATABASE_URL="${RACEMAP_TEST_DATABASE_URL:-$(pg_url postgres)}" \
        make test </dev/null
}

stage_build() {
    make install </dev/null
    local database="racemap_ci_$(date +%s)_$$"
    local server_url database_url
    server_url="$(pg_url postgres)"
    database_url="$(pg_url "$database")"
    export RACEMAP_CI_SERVER_URL="$server_url" RACEMAP_CI_DATABASE="$database"
    # Dropped at the end unless KEEP_CI_DATABASE=1 (to look at it after a failure).
    trap '[[ "${KEEP_CI_DATABASE:-0}" == 1 ]] || $BIN/python scripts/ci_database.py drop' EXIT
    $BIN/python scripts/ci_database.py create

    echo "== racemap run --offline --seasons 2023-2025 (the bundled snapshot) on $database"
    DATABASE_URL="$database_url" $BIN/racemap run --offline --seasons 2023-2025 \
        --reports-dir reports/ci </dev/null

    echo "== dbt build --profiles-dir . (PGDATABASE=$database)"
    PGDATABASE="$database" DBT_ENV_SECRET_PGPASSWORD="$PGPASSWORD" \
        $BIN/dbt build --profiles-dir . --project-dir . </dev/null
}

case "${1:-all}" in
    test) stage_test ;;
    build) stage_build ;;
    all) stage_test && stage_build ;;
    *) echo "usage: scripts/ci.sh [test|build|all]" >&2; exit 2 ;;
esac
