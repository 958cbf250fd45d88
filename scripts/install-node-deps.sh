#!/usr/bin/env bash
# Install the pinned npm packages: anvil (@foundry-rs/anvil + its platform binary package), solc-js,
# OpenZeppelin Contracts and merkle-tree.
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
