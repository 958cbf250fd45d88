"""``python -m ledger_api.cli``: the ``ledger`` command."""

from ledger_api.cli import main

raise SystemExit(main())
