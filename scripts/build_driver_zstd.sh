#!/usr/bin/env bash
# Builds the npm driver's zstd binding, @mongodb-js/zstd (a devDependency: the tests'
# driver needs it for `compressors: ['zstd']`), offline, against Debian's libzstd-dev.
#
# Why by hand: its own install script downloads a prebuilt binary from GitHub, then
# falls back to a script that downloads the zstd sources (and is not even in the npm
# tarball). Neither works without a network, so package.json's `allowScripts` denies
# that script and this one does its job: the binding's binding.gyp wants zstd's headers
# in deps/zstd/lib and a library at deps/zstd/out/lib/libzstd.a. Debian's libzstd.a is
# not position-independent and cannot go into a shared object, so the link name points
# at the shared libzstd.so instead (the linker reads what the file is, not its name);
# the binding then loads libzstd.so.1, which every Debian system has.
#
# Run by scripts/install.sh through `npm run build:driver-zstd`, so node-gyp gets npm's
# configuration (nodedir). Idempotent: does nothing when the binding already loads.
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=node_modules/@mongodb-js/zstd
if [ ! -f "$pkg/package.json" ]; then
  echo "build_driver_zstd: $pkg is not installed (run npm ci first)" >&2
  exit 1
fi
if node -e "require('./$pkg')" 2>/dev/null; then
  exit 0
fi

lib=$(gcc -print-file-name=libzstd.so)
if [ ! -f /usr/include/zstd.h ] || [ "$lib" = libzstd.so ]; then
  echo "build_driver_zstd: zstd.h or libzstd.so is missing: apt-get install libzstd-dev" >&2
  exit 1
fi
mkdir -p "$pkg/deps/zstd/lib" "$pkg/deps/zstd/out/lib"
for header in zstd.h zstd_errors.h zdict.h; do
  ln -sfn "/usr/include/$header" "$pkg/deps/zstd/lib/$header"
done
ln -sfn "$(readlink -f "$lib")" "$pkg/deps/zstd/out/lib/libzstd.a"

node-gyp rebuild --directory "$pkg" >/dev/null
node -e "require('./$pkg')"
