#!/usr/bin/env bash
# Provide a Chromium for the console's browser tests (tests/console/) and print its binary's path.
#   scripts/test-chromium.sh     install Debian's chromium if missing; print the browser binary
# When LEDGER_TEST_CHROMIUM is already set, it is printed and nothing is installed. Playwright
# drives this system browser (executable_path=); `playwright install` is never run (browsers
# cannot be downloaded here, and the suite must not depend on a download).
set -euo pipefail

log() { printf '%s\n' "$*" >&2; }

binary() {
  local b
  for b in /usr/bin/chromium /usr/lib/chromium/chromium /usr/bin/chromium-browser; do
    [ -x "$b" ] && { printf '%s\n' "$b"; return 0; }
  done
  return 1
}

if [ -n "${LEDGER_TEST_CHROMIUM:-}" ]; then printf '%s\n' "$LEDGER_TEST_CHROMIUM"; exit 0; fi
if ! b=$(binary); then
  log "installing Debian's chromium (for the console's browser tests)..."
  if [ "$(id -u)" != 0 ]; then log "not root: install chromium or set LEDGER_TEST_CHROMIUM"; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
  b=$(binary)
fi
# A CJK font, so the Chinese pages render (and their screenshots are readable), not boxes.
if ! fc-list 2>/dev/null | grep -qiE "wqy|noto.*cjk|droid sans fallback"; then
  if [ "$(id -u)" = 0 ]; then
    log "installing a CJK font (fonts-wqy-microhei) for the Chinese pages..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >&2 || log "no CJK font: Chinese shows as boxes"
  fi
fi
printf '%s\n' "$b"
