"""The webhook delivery worker alone in its own process, as `ledger up` runs it (for the SIGKILL
test): store URL and KEK from the environment, limits from LEDGER_WEBHOOK_*."""

from __future__ import annotations

import base64
import os
import signal
import sys
import threading
from pathlib import Path

from settlement.chain.client import ChainClient
from settlement.chain.signing import LocalSigner
from settlement.custody.vault import KeyVault
from settlement.domains.events.delivery import DeliveryWorker
from settlement.runtime import Runtime
from settlement.store.db import Database


def main() -> int:
    db = Database(os.environ["EVENTS_TEST_DATABASE_URL"])
    vault = KeyVault(base64.b64decode(os.environ["EVENTS_TEST_KEK"]))
    runtime = Runtime(home=Path(os.environ["EVENTS_TEST_HOME"]), db=db, chain=ChainClient("http://127.0.0.1:9"),
                      vault=vault, operator=LocalSigner(os.urandom(32)))
    worker = DeliveryWorker(runtime).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("delivering", flush=True)
    stop.wait()
    worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
