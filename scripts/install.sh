#!/usr/bin/env bash
# Installs everything mongo-hotbackup-proxy needs on Debian 12 with Node 20:
# system packages (as root), npm dependencies, the WiredTiger binding and the
# TypeScript build. Safe to run again; apt is skipped when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# libzstd-dev: the tests' driver zstd binding is built against it (build_driver_zstd.sh).
# openssl: the TLS tests make their CA and certificates with it (test/helpers/tls_certs.ts).
# xfsprogs: the reflink tests make an XFS filesystem on a loop device (mkfs.xfs); e2fsprogs an ext4 one.
# python3-pymongo: the replica-set client tests connect with Debian's pymongo 3.11 too.
# ceph-mon ceph-osd radosgw ceph-common: the S3 tests and bench run a real one-node Ceph radosgw (test/helpers/radosgw.ts);
#   s3cmd: the S3 bench's baseline (bench/s3.ts).
APT_PACKAGES=(libwiredtiger-dev wiredtiger socat tmux e2fsprogs xfsprogs mount util-linux python3 make g++ libzstd-dev openssl python3-pymongo
  ceph-mon ceph-osd radosgw ceph-common s3cmd)

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

# package.json's allowScripts denies @mongodb-js/zstd's install script (it downloads;
# see scripts/build_driver_zstd.sh). npm reads allowScripts from 11.16 on, and Node 20
# ships npm 10, which would run that script and fail: then npm ci runs under npm 11,
# fetched from the registry for this one command (the machine's npm is left alone).
npm_ci=(npm ci)
npm_version=$(npm --version)
if [ "$(printf '%s\n' 11.16.0 "$npm_version" | sort -V | head -n1)" != 11.16.0 ]; then
  echo "install: npm $npm_version ignores allowScripts; running npm ci with npm 11 (npx)"
  npm_ci=(npx --yes npm@^11.16.0 ci)
fi

# zstd-napi (the proxy's zstd) ships zstd's sources: build them rather than let
# prebuild-install try to download a binary, which a closed network may leave hanging.
echo "install: npm ci"
npm_config_build_from_source=zstd-napi "${npm_ci[@]}" --no-audit --no-fund --loglevel=error

echo "install: building the npm driver's zstd binding against libzstd-dev"
npm run --silent build:driver-zstd

echo "install: building the WiredTiger binding and the TypeScript sources"
npm run --silent build
