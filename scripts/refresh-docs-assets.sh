#!/usr/bin/env bash
# Refresh the API docs' vendored assets (ledger_api/static/docs/) from npm, so /docs and /redoc
# load nothing from outside the service (an offline bank network shows the same pages).
#
#   scripts/refresh-docs-assets.sh [SWAGGER_UI_VERSION] [REDOC_VERSION]
#
# Takes the files the pages use from the published packages `swagger-ui-dist` and `redoc` (npm
# pack: no install, nothing added to package.json), with their licences, drops the source-map
# comments (the maps are not shipped), and writes VERSIONS with each package's version and the
# sha256 of every file (swagger-init.js, our own start-up script, is left as it is). Review the diff and commit it; tests/api/test_docs.py checks the pages.
set -euo pipefail

SWAGGER_UI_VERSION="${1:-5.35.0}"
REDOC_VERSION="${2:-2.5.4}"   # 2.x: the classic standalone bundle (3.x ships an ES module)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/ledger_api/static/docs"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm pack --silent "swagger-ui-dist@$SWAGGER_UI_VERSION" "redoc@$REDOC_VERSION" >/dev/null
mkdir swagger redoc
tar xzf "swagger-ui-dist-$SWAGGER_UI_VERSION.tgz" -C swagger
tar xzf "redoc-$REDOC_VERSION.tgz" -C redoc

mkdir -p "$DEST"
strip_map() { sed -e '/^\/[*\/]# sourceMappingURL=/d' -e 's#/\*\# sourceMappingURL=[^*]*\*/##' "$1" > "$2"; }
strip_map swagger/package/swagger-ui-bundle.js "$DEST/swagger-ui-bundle.js"
strip_map swagger/package/swagger-ui.css "$DEST/swagger-ui.css"
cp swagger/package/favicon-32x32.png "$DEST/favicon-32x32.png"
cp swagger/package/LICENSE "$DEST/swagger-ui.LICENSE"
cp swagger/package/NOTICE "$DEST/swagger-ui.NOTICE"
cp swagger/package/swagger-ui-bundle.js.LICENSE.txt "$DEST/swagger-ui-bundle.js.LICENSE.txt"
strip_map redoc/package/bundles/redoc.standalone.js "$DEST/redoc.standalone.js"
cp redoc/package/LICENSE "$DEST/redoc.LICENSE"
cp redoc/package/bundles/redoc.standalone.js.LICENSE.txt "$DEST/redoc.standalone.js.LICENSE.txt"

{
  echo "swagger-ui-dist $SWAGGER_UI_VERSION (npm, Apache-2.0)"
  echo "redoc $REDOC_VERSION (npm, MIT)"
  echo
  (cd "$DEST" && sha256sum swagger-ui-bundle.js swagger-ui.css favicon-32x32.png redoc.standalone.js)
} > "$DEST/VERSIONS"
echo "refreshed $DEST:"
cat "$DEST/VERSIONS"
