#!/usr/bin/env bash
# Install the pinned npm packages: anvil and cast (@foundry-rs/anvil, @foundry-rs/cast + their
# platform binary packages), solc-js, OpenZeppelin Contracts and merkle-tree.
#
# `npm install` rather than `npm ci`: npm records only this platform's optional binary package in
# package-lock.json, and `npm ci` then refuses the lock as out of sync with the other platforms'
# entries. Versions are pinned exactly in package.json, so the result is the same.
set -euo pipefail
cd "$(dirname "$0")/.."
npm install --no-audit --no-fund --loglevel=error
case "$(uname -m)" in
  x86_64|amd64) arch=amd64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "no anvil binary package for $(uname -m)" >&2; exit 1 ;;
esac
os=$(uname -s | tr '[:upper:]' '[:lower:]')
bin="node_modules/@foundry-rs/anvil-${os}-${arch}/bin/anvil"
version=$(node -p "require('./package.json').dependencies['@foundry-rs/anvil']")
if [ ! -x "$bin" ]; then
  npm install --no-save --no-audit --no-fund --loglevel=error "@foundry-rs/anvil-${os}-${arch}@${version}"
fi
"$bin" --version | head -1
# cast (the auditor's recipe, scripts/verify-record-with-cast.sh), installed the same way.
cast_bin="node_modules/@foundry-rs/cast-${os}-${arch}/bin/cast"
cast_version=$(node -p "require('./package.json').dependencies['@foundry-rs/cast']")
if [ ! -x "$cast_bin" ]; then
  npm install --no-save --no-audit --no-fund --loglevel=error "@foundry-rs/cast-${os}-${arch}@${cast_version}"
fi
"$cast_bin" --version | head -1
