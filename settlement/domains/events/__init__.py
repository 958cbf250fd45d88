"""Events out (issue 16, docs/events.md): a catalogue of event types, produced in the transaction
of the change they describe, read by members as a cursor-paged list or an SSE stream, and pushed
to members' webhook endpoints signed per the Standard Webhooks specification.

- :mod:`.catalogue`: the types and what they mean;
- :mod:`.producer`: journal observer and follower handlers that write events and their recipients;
- :mod:`.stream`: a member's events after a cursor, and the envelope every channel sends;
- :mod:`.webhooks`: endpoints (URL rules, filters, secrets shown once, rotation with overlap);
- :mod:`.delivery`: the delivery worker (its own threads; at least once, ordered per object,
  retried with backoff and jitter, endpoints that keep failing disabled);
- :mod:`.wiring`: how it plugs in.
"""

from settlement.domains.events.catalogue import CATALOGUE, EVENT_TYPES, PAYLOAD_VERSION
from settlement.domains.events.stream import EVENTS_PAGE_MAX, body_bytes, envelope, parse_cursor, read_page

__all__ = ["CATALOGUE", "EVENTS_PAGE_MAX", "EVENT_TYPES", "PAYLOAD_VERSION", "body_bytes", "envelope",
           "parse_cursor", "read_page"]
