#!/usr/bin/env bash
# Install Virtuoso open source 7.2 (Debian package) non-interactively, for tests/test_remote_virtuoso.py.
# The package's own service (ports 8890/1111) is stopped; the tests start their own server on free ports.
set -euo pipefail
if command -v virtuoso-t >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
printf '%s\n' \
  "virtuoso-opensource-7 virtuoso-opensource-7/dba-password password dba" \
  "virtuoso-opensource-7 virtuoso-opensource-7/dba-password-again password dba" | debconf-set-selections
apt-get update -q >/dev/null || true
apt-get install -y -q virtuoso-opensource >/dev/null
# Stop the packaged service if it was started (we run our own instances with their own db dirs).
(service virtuoso-opensource-7 stop || true) >/dev/null 2>&1
command -v virtuoso-t
