#!/usr/bin/env bash
# Headless Chromium for the report-page tests (tests/test_report_pages.py). Idempotent: installs
# Debian's `chromium` package only when the `chromium` command is missing. Needs root (CI is).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
command -v chromium >/dev/null
