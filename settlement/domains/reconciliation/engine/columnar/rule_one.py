"""Steps 2 and 3 of the columnar run: both files' provider ids numbered together, then rule 1 on
the arrays (:func:`rule1_arrays`, the matcher's general path, property-tested against
``_Run(fast=False)``)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from settlement.domains.reconciliation.engine.columnar.common import (
    _CONFIRMED,
    _KIND_SPACE,
    _SUCCEEDED,
    _array_layout,
    _call,
    _numbers,
    _string_layout,
    np,
    pa,
)


class Rule1(NamedTuple):
    """Rule 1's outcome, in the matcher's terms (see ``_Run`` and its general path)."""

    pos: Any  # per statement row: its ledger entry by (id, kind), n_l when none or a duplicate
    exact: Any  # per statement row: bool, paired by id and equal in amount, currency, status, kind
    dup_s: list[int]  # statement rows repeating an earlier (id, kind), ascending
    dup_l: list[int]  # ledger rows repeating an earlier (id, kind), ascending


def rule1_arrays(s_id: Any, s_kind: Any, s_amt: Any, s_cur: Any, s_st: Any, l_id: Any, l_kind: Any, l_amt: Any,
                 l_cur: Any, l_st: Any, l_chain: Any, id_count: int) -> Rule1:
    """Rule 1 on NumPy columns. ``*_id``: the provider id as an index into one dictionary of both
    sides' ids (``id_count`` entries), -1 for none; the rest are byte codes and int64 amounts.

    The general path: the first ledger entry of each (id, kind) is the one paired; later entries
    and later statement lines with the same (id, kind) are duplicates; a line is paired with the
    first entry of its (id, kind); the pair is exact when amount, currency, the entry's effective
    status (none for a succeeded entry whose chain record is not confirmed) and kind agree.

    Most ids are on one row per side; only the rows of ids that repeat on their side are keyed on
    (id, kind) and sorted."""
    n_l = len(l_id)
    s_with, l_with = np.flatnonzero(s_id >= 0), np.flatnonzero(l_id >= 0)
    s_repeats = np.bincount(s_id[s_with], minlength=id_count)[s_id[s_with]] > 1
    l_repeats = np.bincount(l_id[l_with], minlength=id_count)
    l_repeated_id = np.append(l_repeats > 1, False)  # index id_count: "no id"
    l_repeats = l_repeats[l_id[l_with]] > 1
    # ledger ids on one row: that row, if the kind agrees
    l_row_of = np.full(id_count + 1, n_l, np.int64)
    once = l_with[~l_repeats]
    l_row_of[l_id[once]] = once
    s_index = np.where(s_id >= 0, s_id, id_count)
    pos = l_row_of[s_index]
    pos[np.append(l_kind, np.uint8(0))[pos] != s_kind] = n_l
    # ledger ids on several rows: the first row of each (id, kind); the others are duplicates
    l_keys, l_first, dup_l = _first_by_key(l_with[l_repeats], l_id, l_kind)
    s_rows = np.flatnonzero(l_repeated_id[s_index])
    if len(s_rows):
        key = s_id[s_rows] * _KIND_SPACE + s_kind[s_rows]
        at = np.minimum(np.searchsorted(l_keys, key), len(l_keys) - 1)  # l_keys: not empty here
        pos[s_rows] = np.where(l_keys[at] == key, l_first[at], n_l)
    # statement ids on several rows: later rows of an (id, kind) are duplicates, paired with nothing
    _, _, dup_s = _first_by_key(s_with[s_repeats], s_id, s_kind)
    pos[dup_s] = n_l
    # the effective status of each entry, code 0 (never a line's status) when the chain disagrees
    l_eff = np.where((l_st == _SUCCEEDED) & (l_chain != 0) & (l_chain != _CONFIRMED), 0, l_st).astype(np.uint8)
    zero = np.zeros(1, np.uint8)
    exact = (pos != n_l) & (s_amt == np.append(l_amt, -1)[pos]) & (s_cur == np.append(l_cur, zero)[pos]) & \
        (s_st == np.append(l_eff, zero)[pos]) & (s_kind == np.append(l_kind, zero)[pos])
    return Rule1(pos, exact, dup_s.tolist(), dup_l.tolist())


def _first_by_key(rows: Any, ids: Any, kinds: Any) -> tuple[Any, Any, Any]:
    """For ascending ``rows``: their sorted distinct (id, kind) keys, the first row of each, and
    the rows repeating an earlier key (ascending)."""
    key = ids[rows].astype(np.int64) * _KIND_SPACE + kinds[rows]
    keys, first_at = np.unique(key, return_index=True)  # first occurrences (a stable sort)
    later = np.ones(len(rows), bool)
    later[first_at] = False
    return keys, rows[first_at], rows[later]


def _id_indices(s_txn: Any, l_txn: Any, pool: ThreadPoolExecutor | None = None) -> tuple[Any, Any, int]:
    """Both sides' provider ids numbered (equal ids, equal numbers, from 0; -1: no id), and how
    many numbers there are; ``pool`` lends a second thread to the array work."""
    chunks = s_txn.chunks + l_txn.chunks
    keyed = _short_id_keys(chunks, pool.map if pool is not None else map)
    ids, count = _dictionary_ids(chunks) if keyed is None else _number_keys(*keyed)
    return ids[:len(s_txn)], ids[len(s_txn):], count


def _short_id_keys(chunks: list, mapper: Callable = map) -> tuple[Any, Any] | None:
    """Exact integer keys when every id has one byte length and all share their first bytes but a
    few: those read as a decimal number (up to 19 ASCII digits) or as raw bytes (up to 8) give a
    key that is equal exactly when the ids are. Common for provider ids (a date and a sequence);
    None otherwise. Returns (key per row, True where the row has an id). The chunks are worked on
    in two halves through ``mapper`` (a thread pool's ``map``: NumPy releases the GIL)."""
    layout = [_array_layout(c) for c in chunks]
    lengths = [np.diff(offsets) for offsets, _ in layout]
    width = max((int(x.max()) for x in lengths if len(x)), default=0)
    if width == 0 or width > 64 or not all(np.all((x == width) | (x == 0)) for x in lengths):
        return None
    present = np.concatenate(lengths) > 0
    # ids right-aligned in whole little-endian words; every id is compared with the first one
    span = -(-width // 8) * 8
    first = next(values[:width] for _, values in layout if len(values))
    reference = np.zeros(span, np.uint8)
    reference[span - width:] = first
    halves = [layout[: len(layout) // 2], layout[len(layout) // 2:]]
    built = list(mapper(lambda half: _id_words(half, width, span, reference.view("<u8")), halves))
    differ = [a | b for a, b in zip(built[0][1], built[1][1])]
    rest = width - _shared_prefix(differ, span, width)
    if rest == 0:  # one id throughout
        return np.zeros(len(present), np.uint64), present
    tails = list(mapper(lambda grids: _tails(grids, span, rest), [built[0][0], built[1][0]]))
    if rest <= 19 and all(digits for _, digits in tails):
        parts = [key for half, _ in tails for key in mapper(_decimal_keys, half)]
    elif rest <= 8:
        parts = [tail[:, 0] for half, _ in tails for tail in half]  # the raw bytes, equal when the tails are
    else:
        return None
    keys = np.concatenate(parts)
    if len(keys) != len(present):
        spread = np.zeros(len(present), np.uint64)
        spread[present] = keys
        keys = spread
    return keys, present


def _id_words(layout: list, width: int, span: int, reference: Any) -> tuple[list, list[int]]:
    """The ids of some chunks as rows of words, and per word the bits any id has that the
    reference has not (or lacks)."""
    grids, differ = [], [0] * (span // 8)
    for _, values in layout:
        grid = np.zeros((len(values) // width, span), np.uint8)
        grid[:, span - width:] = values.reshape(-1, width)
        words = grid.view("<u8")
        grids.append(words)
        if len(words):
            for k in range(span // 8):
                differ[k] |= int(np.bitwise_or.reduce(words[:, k] ^ reference[k]))
    return grids, differ


def _shared_prefix(differ: list[int], span: int, width: int) -> int:
    """How many leading bytes all ids share, from the per-word bits in which some id differs."""
    for word, bits in enumerate(differ):
        if bits:
            byte = next(k for k in range(8) if bits >> (8 * k) & 0xFF)  # little-endian: byte k first
            return max(0, word * 8 + byte - (span - width))
    return width


def _tails(grids: list, span: int, rest: int) -> tuple[list, bool]:
    """Per grid, each id's last ``rest`` bytes, right-aligned in little-endian words with the bytes
    before them cleared to ASCII "0"; and whether every one of those bytes is an ASCII digit."""
    first_word = (span - rest) // 8
    used = (rest - 1) % 8 + 1  # tail bytes in the first tail word: its high (last) bytes
    keep = np.uint64(((1 << (8 * used)) - 1) << (64 - 8 * used))
    tails, digits = [], True
    for words in grids:
        tail = words[:, first_word:].copy()
        tail[:, 0] = (tail[:, 0] & keep) | (_SWAR_ZEROS & ~keep)
        digits = digits and not (tail.size and int(np.subtract(tail.view(np.uint8), 48, dtype=np.uint8).max()) > 9)
        tails.append(tail)
    return tails, digits


_SWAR_ZEROS = np.uint64(0x3030303030303030) if np is not None else None


def _decimal_keys(tail: Any) -> Any:
    """Rows of ASCII digits (little-endian words, 8 digits a word) as their decimal number, in a
    few multiplications a word (the SWAR method of simdjson); at most 19 digits, so no overflow."""
    key = np.zeros(len(tail), np.uint64)
    for g in range(tail.shape[1]):
        v = tail[:, g] - _SWAR_ZEROS
        v = v * np.uint64(10) + (v >> np.uint64(8))
        v = ((v & np.uint64(0x000000FF000000FF)) * np.uint64(100 + (1000000 << 32))
             + ((v >> np.uint64(16)) & np.uint64(0x000000FF000000FF)) * np.uint64(1 + (10000 << 32))) >> np.uint64(32)
        key = key * np.uint64(10**8) + v
    return key


def _number_keys(keys: Any, present: Any) -> tuple[Any, int]:
    """Dense numbers for integer keys (-1 where ``present`` is False). When the keys' span and the
    row count fit in 64 bits together, one plain sort of (key, row) does it; else ``np.unique``."""
    everywhere = bool(present.all())
    wanted = keys if everywhere else keys[present]
    if not len(wanted):
        return np.full(len(keys), -1, np.int64), 0
    low = wanted.min()
    span_bits = int(wanted.max() - low).bit_length()
    row_bits = max((len(wanted) - 1).bit_length(), 1)
    if span_bits + row_bits <= 64:
        packed = wanted - low
        packed <<= np.uint64(row_bits)
        packed |= np.arange(len(wanted), dtype=np.uint64)
        packed.sort()
        new = np.empty(len(wanted), bool)
        new[0] = True
        in_order = packed >> np.uint64(row_bits)
        np.not_equal(in_order[1:], in_order[:-1], out=new[1:])
        packed &= np.uint64((1 << row_bits) - 1)  # now the rows, in key order
        ranks = np.cumsum(new)
        numbers = np.empty(len(wanted), np.int64)
        numbers[packed.view(np.int64)] = ranks
        numbers -= 1
        count = int(ranks[-1])
    else:
        distinct, numbers = np.unique(wanted, return_inverse=True)
        count = len(distinct)
    if everywhere:
        return numbers, count
    ids = np.full(len(keys), -1, np.int64)
    ids[present] = numbers
    return ids, count


def _dictionary_ids(chunks: list) -> tuple[Any, int]:
    """The ids of ``chunks`` (in order) as indices into their dictionary (-1: no id), and its size."""
    encoded = _call("dictionary_encode", [pa.chunked_array(chunks, pa.string())])
    parts = encoded.chunks
    if not parts:
        return np.zeros(0, np.int64), 0
    # the chunks of a chunked encoding share one dictionary; check that instead of assuming it
    dictionary = parts[-1].dictionary
    address = dictionary.buffers()[1].address
    if any(len(c.dictionary) != len(dictionary) or c.dictionary.buffers()[1].address != address for c in parts):
        combined = _call("dictionary_encode", [pa.chunked_array(chunks, pa.string()).combine_chunks()])
        parts, dictionary = [combined], combined.dictionary
    ids = np.concatenate([_numbers(c.indices, np.int32) for c in parts]).astype(np.int64)
    (offsets, _), = _string_layout(pa.chunked_array([dictionary]))
    empty = np.flatnonzero(np.diff(offsets) == 0)
    if len(empty):
        ids[ids == empty[0]] = -1
    return ids, len(dictionary)
