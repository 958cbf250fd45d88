#!/usr/bin/env bash
# Build the console's vendored browser bundle of @openzeppelin/merkle-tree (npm, pinned in
# package.json) with esbuild (a pinned devDependency): ledger_api/static/console/merkle-tree.min.js
# (an IIFE setting window.OZMerkle), its licences (merkle-tree.LICENSE: every bundled package's
# name, version and licence text) and its line in VERSIONS. The built file is committed: the
# service needs no Node at run time. `--check` rebuilds into a temporary folder and fails when the
# committed files differ (tests/console/test_zz_assets.py runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=ledger_api/static/console
out_dir=$dest
if [ "${1:-}" = "--check" ]; then out_dir=$(mktemp -d); trap 'rm -rf "$out_dir"' EXIT; fi
meta=$(mktemp)
node_modules/.bin/esbuild scripts/console/merkle-entry.js --bundle --format=iife --global-name=OZMerkle \
  --platform=browser --target=es2020 --minify --legal-comments=none --charset=utf8 \
  --metafile="$meta" --outfile="$out_dir/merkle-tree.min.js" --log-level=warning
# The packages bundled, from esbuild's own list of inputs: their licences go beside the bundle.
node -e '
const fs = require("fs"), path = require("path");
const inputs = Object.keys(JSON.parse(fs.readFileSync(process.argv[1], "utf8")).inputs);
const roots = new Set();
for (const f of inputs) {
  const m = f.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//);
  if (m) roots.add(m[1]);
}
let text = "Licences of the packages bundled into merkle-tree.min.js (scripts/build-console-merkle.sh)\n";
for (const root of [...roots].sort()) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
  const lic = fs.readdirSync(root).find((n) => /^(licen[cs]e|copying)/i.test(n));
  text += "\n==== " + pkg.name + " " + pkg.version + " (" + pkg.license + ")\n\n";
  text += lic ? fs.readFileSync(path.join(root, lic), "utf8").trim() + "\n" : "(no licence file in the package)\n";
}
fs.writeFileSync(process.argv[2], text);
' "$meta" "$out_dir/merkle-tree.LICENSE"
rm -f "$meta"
version=$(node -p 'require("./node_modules/@openzeppelin/merkle-tree/package.json").version')
esbuild_version=$(node_modules/.bin/esbuild --version)
line="@openzeppelin/merkle-tree ${version} (npm, bundled by esbuild ${esbuild_version}: scripts/build-console-merkle.sh; licences MIT and others: merkle-tree.LICENSE)"
if [ "$out_dir" = "$dest" ]; then
  grep -v '^@openzeppelin/merkle-tree ' "$dest/VERSIONS" > "$dest/VERSIONS.new" || true
  printf '%s\n' "$line" >> "$dest/VERSIONS.new"
  mv "$dest/VERSIONS.new" "$dest/VERSIONS"
  echo "built $dest/merkle-tree.min.js ($(wc -c < "$dest/merkle-tree.min.js") bytes)" >&2
else
  cmp -s "$out_dir/merkle-tree.min.js" "$dest/merkle-tree.min.js" \
    && cmp -s "$out_dir/merkle-tree.LICENSE" "$dest/merkle-tree.LICENSE" \
    && grep -qxF "$line" "$dest/VERSIONS" \
    || { echo "the committed merkle-tree bundle is stale: run scripts/build-console-merkle.sh" >&2; exit 1; }
fi
