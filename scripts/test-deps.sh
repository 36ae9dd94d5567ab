#!/usr/bin/env bash
# Installs the real services the test suite uses (redis-server, chromium; openssl makes the
# certificates of the TLS Redis test) when missing, and the
# official Aztec node client the conformance tests run (npm packages pinned in
# conformance/package-lock.json; needs node and npm).
# Called by `make test`; a no-op when everything is already installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

conformance="$root/conformance"
if [ ! -d "$conformance/node_modules/@aztec/stdlib" ]; then
  command -v npm >/dev/null 2>&1 || { echo "tests need node and npm (Node.js >= 20) for conformance/" >&2; exit 1; }
  echo "installing the official Aztec node client for conformance/ (npm ci)"
  (cd "$conformance" && npm ci --no-audit --no-fund --loglevel=error)
fi

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "tests need: ${need[*]} (install them with apt-get as root)" >&2; exit 1; }
  SUDO="sudo"
fi
echo "installing test dependencies: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
