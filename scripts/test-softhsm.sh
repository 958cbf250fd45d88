#!/usr/bin/env bash
# Provide SoftHSM2 (a PKCS#11 token in software) for the HSM tests and print its module's path.
#   scripts/test-softhsm.sh     install Debian's softhsm2 if missing; print the PKCS#11 library
# When LEDGER_TEST_HSM_MODULE is already set, it is printed and nothing is installed. The tests
# make their own token per session, under a temporary SOFTHSM2_CONF (tests/custody/conftest.py):
# nothing here touches /etc/softhsm or another token.
set -euo pipefail

log() { printf '%s\n' "$*" >&2; }

module() {
  local m
  for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
    [ -f "$m" ] && { printf '%s\n' "$m"; return 0; }
  done
  return 1
}

if [ -n "${LEDGER_TEST_HSM_MODULE:-}" ]; then printf '%s\n' "$LEDGER_TEST_HSM_MODULE"; exit 0; fi
if ! m=$(module) || ! command -v softhsm2-util >/dev/null; then
  log "installing Debian's softhsm2 (for the HSM signer tests)..."
  if [ "$(id -u)" != 0 ]; then log "not root: install softhsm2 or set LEDGER_TEST_HSM_MODULE"; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >&2
  m=$(module)
fi
printf '%s\n' "$m"
