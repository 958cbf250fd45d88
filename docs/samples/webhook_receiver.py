"""A webhook receiver for the README tour: verifies each delivery with the `standardwebhooks`
library (Standard Webhooks signatures) and prints the event; refuses anything else with 401.

    python docs/samples/webhook_receiver.py PORT whsec_...
"""

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

hook = Webhook(sys.argv[2])
seen: set[str] = set()


class Receive(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            event = hook.verify(body, dict(self.headers))  # signature, and a timestamp within 5 minutes
        except WebhookVerificationError as exc:
            print(f"refused: {exc}", flush=True)
            self.send_response(401)
        else:
            if event["id"] not in seen:  # at least once: the event id is the idempotency key
                seen.add(event["id"])
                data = event["data"]
                print(event["type"], data["object_id"], data["state"], data["tx_hash"] or "", flush=True)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Receive).serve_forever()
