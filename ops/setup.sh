#!/usr/bin/env bash
# Installs what a fresh machine lacks: nats-server (Debian package) and the npm dependencies.
# Idempotent: does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  echo "[setup] installing nats-server from Debian's packages"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "[setup] ready: $(PATH="$PATH:/usr/sbin" nats-server --version), node $(node --version)"
