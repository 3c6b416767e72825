#!/usr/bin/env bash
# Install Debian's chromium + chromedriver for the headless browser test of the query page
# (tests/test_server_browser.py). No browser build is downloaded from elsewhere.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || true
apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null
command -v chromium
