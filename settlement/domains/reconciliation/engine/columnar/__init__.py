"""Reconciliation of a normalized statement CSV against a ledger export CSV, column-wise in Arrow.

What the serial path (:func:`parse_normalized_csv` + :func:`parse_ledger_csv` + :func:`reconcile`)
does, without a Python object per field:

1. **Scan.** Each file is cut into pieces of about ``PIECE_BYTES`` that a pool of threads reads
   (``pread``) and checks in parallel; Arrow and NumPy release the GIL. A piece owns the lines that
   start in it. A piece with no quote and no CR outside a CRLF pair goes to Arrow's CSV reader with
   every column read as a string (one row per line: an empty line becomes a row of empty fields,
   which the kind check refuses), then each column is checked with the serial parser's rules,
   vectorized: byte codes for kind, status, currency and chain state (``index_in``, or one byte
   compare when a column holds one value), ASCII digits then ``cast`` for amounts, and for
   timestamps a NumPy check of the common ISO 8601 shapes and field ranges, with
   ``datetime.fromisoformat`` once per distinct value for anything else. A piece that fails any
   check is redone in blocks of ``BLOCK_BYTES``, each again through Arrow and, when that fails
   too, through the serial parser's own block functions (:func:`_fast_block`, then
   :func:`_slow_block` row by row), so row errors, line numbers and raw text are the serial
   parser's, and so is the known limit of its fast path (a block is checked for its total field
   count). Out come, per file: provider ids (Arrow strings), kind / currency / status / chain
   state as byte codes, amounts as int64 (NumPy).
2. **Ids.** Both files' provider ids are numbered together (equal ids, equal numbers). Ids of one
   length that share all but their last few bytes (a date and a sequence, say) are read as exact
   integers (up to 19 digits, or 8 bytes) and numbered by one sort; any other ids by Arrow's
   dictionary encoding.
3. **Rule 1** (:func:`rule1_arrays`) is the matcher's general path on those arrays: (id, kind)
   first occurrences, duplicates, pairs and the exact test in a few array passes. It is
   property-tested against ``_Run(fast=False)``.
4. **Open rows.** Only rows outside the exact matches (about 1.5% in a typical run) become
   :class:`StatementLine` / :class:`LedgerEntry` tuples, with the serial parser's converters; rule 2
   and every record run on those, in the matcher's own :meth:`_Run.finish`.
5. **Report.** Its tables are :class:`LazyStatementTable` / :class:`LazyLedgerTable`: their length,
   the open rows and the id/kind/amount/currency/status/chain columns are there at once (totals
   are summed in NumPy), so counts, totals and exceptions never read the files again; anything
   else (iterating the exact matches, ``columns``) parses the file once with the ordinary parser,
   after checking the file has not changed.

The path is taken only for UTF-8 files whose header line is plain and whose amounts fit in int64;
anything else (GB18030, a header error, pyarrow missing) makes :func:`reconcile_files_columnar`
return None and the caller runs the serial path, which raises the errors it always did.

pyarrow imports pandas when ``pa.array``/``pa.scalar`` convert Python or NumPy values or when
``to_numpy`` is called (0.3 s); this package builds its small arrays from buffers instead.

The sections: :mod:`.scan` (step 1), :mod:`.rule_one` (steps 2 and 3), :mod:`.tables` (step 5) and
:mod:`.run` (the entry point, step 4 and the totals); :mod:`.common` holds what they share. The
scan's tunables (``PIECE_BYTES``, ``BLOCK_BYTES``, ``LINE_SLACK_BYTES`` ...) live in :mod:`.scan`
and are read there, so set them on that module. Besides the public names, the package re-exports
the internals its tests check one by one.
"""

from __future__ import annotations

# the public names (``__all__``) and, marked noqa, the internals the tests check one by one
from settlement.domains.reconciliation.engine.columnar.common import (  # noqa: F401
    _CODE_TEXTS,
    _CODE_VALUES,
    LEDGER,
    STATEMENT,
    _string_layout,
    _utf8_array,
    columnar_available,
)
from settlement.domains.reconciliation.engine.columnar.rule_one import (  # noqa: F401
    Rule1,
    _id_indices,
    _short_id_keys,
    rule1_arrays,
)
from settlement.domains.reconciliation.engine.columnar.run import COLUMNAR_MIN_BYTES, reconcile_files_columnar
from settlement.domains.reconciliation.engine.columnar.scan import (  # noqa: F401
    _ISO_SHAPES,
    _amounts,
    _codes,
    _iso_certainly_valid,
    _Scan,
    _submit_pieces,
)
from settlement.domains.reconciliation.engine.columnar.tables import LazyLedgerTable, LazyStatementTable

__all__ = ["COLUMNAR_MIN_BYTES", "LazyLedgerTable", "LazyStatementTable", "Rule1",
           "columnar_available", "reconcile_files_columnar", "rule1_arrays"]
