#!/usr/bin/env bash
# Installs everything mongo-hotbackup-proxy needs on Debian 12 with Node 20:
# system packages (as root), npm dependencies, the WiredTiger binding and the
# TypeScript build. Safe to run again; apt is skipped when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libwiredtiger-dev wiredtiger socat tmux e2fsprogs python3 make g++)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "install: npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "install: building the WiredTiger binding and the TypeScript sources"
npm run --silent build
