#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: Prometheus and its Pushgateway for the test
# bed (promtool for the alert-rule tests comes with Prometheus), and the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v prometheus >/dev/null 2>&1 || ! command -v prometheus-pushgateway >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus prometheus-pushgateway >/dev/null
fi
if [ ! -x venv/bin/python ]; then
  python3 -m venv venv
fi
venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
