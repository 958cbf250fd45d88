"""The chain client: the only module that talks to the EVM node (plain JSON-RPC over HTTP, see
:mod:`settlement.chain.transport`; web3.py only for tooling via ``.w3``).

It signs locally, sends only raw transactions and standard ``eth_*`` calls (no unlocked
accounts, no ``anvil_*``), works with EIP-1559, legacy and zero gas prices as configured (never
guessed from ``eth_gasPrice``: anvil answers 1 gwei even when fees are zero), polls receipts with
bounded backoff, and turns reverts with custom errors into :class:`ChainRevertError`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from web3 import HTTPProvider, Web3

from settlement.chain.contracts import ContractCatalogue, catalogue, checksum_address
from settlement.chain.signing import FeeParams, SignedTx, Signer
from settlement.chain.transport import JsonRpcTransport
from settlement.core.errors import ChainRevertError, ChainUnavailableError, ConfigurationError

RPC_TIMEOUT_S = 30.0
RPC_BATCH_MAX = 500  # JSON-RPC requests per HTTP batch
RECEIPT_POLL_INITIAL_S = 0.02
RECEIPT_POLL_MAX_S = 0.5
# Send-side errors that mean "the node already has this very transaction": a rebroadcast after a
# crash is then a no-op, which is what makes dispatch idempotent.
ALREADY_KNOWN_MARKERS = ("already known", "already imported", "known transaction", "already exists")
NONCE_TOO_LOW_MARKERS = ("nonce too low", "nonce is too low", "too low nonce", "invalid nonce")


class RpcError(ChainUnavailableError):
    """The node answered a JSON-RPC error (as opposed to being unreachable)."""

    type_slug = "chain-rpc-error"
    title = "The chain node refused the request"
    status = 502

    def __init__(self, method: str, error: dict) -> None:
        super().__init__(f"{method}: {error.get('message', error)}", code=error.get("code"))
        self.method = method
        self.error = error


@dataclass(frozen=True)
class FeePolicy:
    """How fees are set; from settings, never guessed."""

    mode: str = "zero"  # zero | legacy | eip1559
    gas_price_wei: int = 0
    max_fee_per_gas_wei: int = 0
    max_priority_fee_per_gas_wei: int = 0

    def params(self) -> FeeParams:
        if self.mode == "zero":
            return FeeParams(gas_price=0)
        if self.mode == "legacy":
            return FeeParams(gas_price=self.gas_price_wei)
        if self.mode == "eip1559":
            if self.max_fee_per_gas_wei < self.max_priority_fee_per_gas_wei:
                raise ConfigurationError("max_fee_per_gas_wei must be >= max_priority_fee_per_gas_wei")
            return FeeParams(max_fee_per_gas=self.max_fee_per_gas_wei,
                             max_priority_fee_per_gas=self.max_priority_fee_per_gas_wei)
        raise ConfigurationError(f"unknown fee mode {self.mode!r}")


@dataclass(frozen=True)
class SendResult:
    tx_hash: str
    accepted: bool  # the node has it (newly or already)
    nonce_too_low: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    status: int
    block_number: int
    block_hash: str
    gas_used: int
    logs: list[dict]
    to: str | None
    from_: str
    contract_address: str | None

    @classmethod
    def from_rpc(cls, r: dict) -> Receipt:
        return cls(
            tx_hash=r["transactionHash"],
            status=int(r["status"], 16),
            block_number=int(r["blockNumber"], 16),
            block_hash=r["blockHash"],
            gas_used=int(r["gasUsed"], 16),
            logs=r.get("logs", []),
            to=r.get("to"),
            from_=r["from"],
            contract_address=r.get("contractAddress"),
        )


@dataclass(frozen=True)
class DecodedLog:
    contract: str
    event: str
    address: str
    args: dict[str, Any]
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    # When the node includes it in the log (newer nodes do): the block's unix time.
    block_timestamp: int | None = None


class ChainClient:
    def __init__(self, rpc_url: str, fees: FeePolicy | None = None, *, timeout_s: float = RPC_TIMEOUT_S,
                 contracts: ContractCatalogue | None = None) -> None:
        self.rpc_url = rpc_url
        self.fees = fees or FeePolicy()
        self.timeout_s = timeout_s
        self.transport = JsonRpcTransport(rpc_url, timeout_s)
        self._contracts = contracts

    def with_timeout(self, timeout_s: float) -> "ChainClient":
        """The same node, fees and contracts, with its own connection and another timeout (the
        request path's short one: a hung node must not hold a request for 30 s)."""
        client = ChainClient(self.rpc_url, self.fees, timeout_s=timeout_s, contracts=self._contracts)
        if "chain_id" in self.__dict__:  # already asked: never ask again
            client.__dict__["chain_id"] = self.__dict__["chain_id"]
        return client

    @cached_property
    def w3(self) -> Web3:
        """web3.py on the same node, for tooling and tests; the service itself never uses it."""
        return Web3(HTTPProvider(self.rpc_url, request_kwargs={"timeout": self.timeout_s}))

    @property
    def contracts(self) -> ContractCatalogue:
        return self._contracts or catalogue()

    # -- plain JSON-RPC -------------------------------------------------------------------------

    def rpc(self, method: str, params: list | None = None) -> Any:
        t = self.transport
        response = t.post({"jsonrpc": "2.0", "id": t.next_id(), "method": method, "params": params or []}, method)
        if not isinstance(response, dict):
            raise RpcError(method, {"message": f"unexpected answer: {str(response)[:200]}"})
        if "error" in response:
            raise RpcError(method, dict(response["error"]))
        return response.get("result")

    def batch(self, calls: Sequence[tuple[str, list]]) -> list[dict]:
        """Many requests in bounded HTTP batches; answers are raw {'result'|'error'} dicts in order."""
        t = self.transport
        answers: list[dict] = []
        for start in range(0, len(calls), RPC_BATCH_MAX):
            chunk = calls[start:start + RPC_BATCH_MAX]
            ids = [t.next_id() for _ in chunk]
            response = t.post([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                               for i, (m, p) in zip(ids, chunk)], "batch")
            if not isinstance(response, list):
                error = response.get("error") if isinstance(response, dict) else None
                raise RpcError("batch", dict(error or {"message": str(response)[:200]}))
            by_id = {r.get("id"): r for r in response if isinstance(r, dict)}
            missing = [i for i in ids if i not in by_id]
            if missing:  # JSON-RPC answers a batch in any order, but must answer every request
                raise RpcError("batch", {"message": f"{len(missing)} of {len(ids)} requests unanswered"})
            answers.extend(by_id[i] for i in ids)
        return answers

    @cached_property
    def chain_id(self) -> int:
        return int(self.rpc("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def get_block(self, block: int | str = "latest") -> dict | None:
        tag = hex(block) if isinstance(block, int) else block
        b = self.rpc("eth_getBlockByNumber", [tag, False])
        if b is None:
            return None
        return {"number": int(b["number"], 16), "hash": b["hash"], "timestamp": int(b["timestamp"], 16),
                "parent_hash": b["parentHash"]}

    def head_and_block(self, block: int | None) -> tuple[int, dict | None]:
        """The head's number and (when ``block`` is given) that block, in one HTTP round trip."""
        calls: list[tuple[str, list]] = [("eth_blockNumber", [])]
        if block is not None:
            calls.append(("eth_getBlockByNumber", [hex(block), False]))
        answers = self.batch(calls)
        for method, answer in zip(("eth_blockNumber", "eth_getBlockByNumber"), answers):
            if "error" in answer:
                raise RpcError(method, dict(answer["error"]))
        head = int(answers[0]["result"], 16)
        if block is None or answers[1].get("result") is None:
            return head, None
        b = answers[1]["result"]
        return head, {"number": int(b["number"], 16), "hash": b["hash"], "timestamp": int(b["timestamp"], 16),
                      "parent_hash": b["parentHash"]}

    def get_code(self, address: str, block: int | str = "latest") -> bytes:
        tag = hex(block) if isinstance(block, int) else block
        return bytes.fromhex(self.rpc("eth_getCode", [address, tag])[2:])

    def pending_nonce(self, address: str) -> int:
        return int(self.rpc("eth_getTransactionCount", [address, "pending"]), 16)

    def nonces(self, addresses: Sequence[str], tag: str = "latest") -> dict[str, int]:
        """Transaction counts of many accounts in one round trip. ``latest``: nonces consumed by
        the canonical chain; ``pending``: also those in the node's pool."""
        answers = self.batch([("eth_getTransactionCount", [a, tag]) for a in addresses])
        out: dict[str, int] = {}
        for address, answer in zip(addresses, answers):
            if "error" in answer:
                raise RpcError("eth_getTransactionCount", dict(answer["error"]))
            out[address] = int(answer["result"], 16)
        return out

    def transactions_known(self, tx_hashes: Sequence[str]) -> dict[str, bool]:
        """Whether the node has each transaction (in its pool or mined), in one round trip."""
        answers = self.batch([("eth_getTransactionByHash", [h]) for h in tx_hashes])
        out: dict[str, bool] = {}
        for h, answer in zip(tx_hashes, answers):
            if "error" in answer:
                raise RpcError("eth_getTransactionByHash", dict(answer["error"]))
            out[h] = answer.get("result") is not None
        return out

    def block_hashes(self, numbers: Sequence[int]) -> dict[int, str | None]:
        """The canonical chain's hash at each block number (None past the head), in one round trip."""
        answers = self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        out: dict[int, str | None] = {}
        for n, answer in zip(numbers, answers):
            if "error" in answer:
                raise RpcError("eth_getBlockByNumber", dict(answer["error"]))
            block = answer.get("result")
            out[n] = block["hash"] if block else None
        return out

    def balance(self, address: str) -> int:
        return int(self.rpc("eth_getBalance", [address, "latest"]), 16)

    def transaction_known(self, tx_hash: str) -> bool:
        return self.rpc("eth_getTransactionByHash", [tx_hash]) is not None

    # -- contract calls -------------------------------------------------------------------------

    def encode(self, contract: str, function: str, args: Sequence[Any]) -> bytes:
        return self.contracts.function(contract, function).encode(list(args))

    def call(self, contract: str, address: str, function: str, args: Sequence[Any] = (),
             block: int | str = "latest", sender: str | None = None) -> tuple:
        """eth_call a view (or simulate a transaction); reverts raise ChainRevertError."""
        fn = self.contracts.function(contract, function)
        tx = {"to": address, "data": "0x" + fn.encode(list(args)).hex()}
        if sender:
            tx["from"] = sender
        tag = hex(block) if isinstance(block, int) else block
        try:
            out = self.rpc("eth_call", [tx, tag])
        except RpcError as exc:
            raise self.revert_error(exc.error, f"{contract}.{function}") from exc
        return fn.decode_output(bytes.fromhex(out[2:]))

    def revert_error(self, rpc_error: dict, context: str) -> ChainRevertError | RpcError:
        data = rpc_error.get("data")
        if isinstance(data, dict):
            data = data.get("data") or data.get("result")
        if isinstance(data, str) and data.startswith("0x"):
            decoded = self.contracts.decode_error(bytes.fromhex(data[2:]))
            if decoded:
                name, args = decoded
                return ChainRevertError(f"{context} reverted with {name}", error_name=name, args=args)
            return ChainRevertError(f"{context} reverted (data {data[:74]})", error_name=None, args={"data": data})
        if "revert" in str(rpc_error.get("message", "")).lower():
            return ChainRevertError(f"{context} reverted: {rpc_error.get('message')}")
        return RpcError(context, rpc_error)

    def revert_reason(self, receipt: Receipt, sender: str, to: str | None, data: bytes, gas: int) -> ChainRevertError:
        """Why a mined transaction reverted: replays it with eth_call, first on the state before
        its block, then (when that replay succeeds, because the transaction depended on an
        earlier one of the same block) on the state after it. The receipt's status is the
        truth; the replay only names the custom error."""
        tx = {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(gas)}
        for block in (max(receipt.block_number - 1, 0), receipt.block_number):
            try:
                self.rpc("eth_call", [tx, hex(block)])
            except RpcError as exc:
                err = self.revert_error(exc.error, "transaction")
                if isinstance(err, ChainRevertError):
                    return err
        return ChainRevertError("transaction reverted (reason not recoverable by replay)")

    def simulate(self, sender: str, to: str | None, data: bytes, gas: int,
                 block: int | str = "latest") -> ChainRevertError | None:
        """The call as ``sender`` would make it now (eth_call): None when it would succeed, else
        why it would revert."""
        tx = {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(gas)}
        tag = hex(block) if isinstance(block, int) else block
        try:
            self.rpc("eth_call", [tx, tag])
        except RpcError as exc:
            err = self.revert_error(exc.error, "simulated call")
            if isinstance(err, ChainRevertError):
                return err
            raise err from exc
        return None

    def forwarded_revert_reason(self, forwarder: str, sender: str, to: str, data: bytes, gas: int,
                                block: int | str = "latest") -> ChainRevertError | None:
        """Why a call relayed through an ERC-2771 forwarder reverts (the forwarder itself only says
        ``FailedCall``): the inner call simulated from the forwarder with the signer appended to
        the calldata, which is exactly what ``ERC2771Context`` decodes. None when it succeeds."""
        tx = {"from": forwarder, "to": to, "data": "0x" + data.hex() + sender[2:].lower(), "gas": hex(gas)}
        tag = hex(block) if isinstance(block, int) else block
        try:
            self.rpc("eth_call", [tx, tag])
        except RpcError as exc:
            err = self.revert_error(exc.error, "forwarded call")
            if isinstance(err, ChainRevertError):
                return err
            raise err from exc
        return None

    def chain_time(self) -> int:
        """The latest block's timestamp: the clock contracts see (a dev chain's may run ahead)."""
        block = self.get_block("latest")
        if block is None:
            raise ChainUnavailableError("the node has no latest block")
        return int(block["timestamp"])

    # -- sending --------------------------------------------------------------------------------

    def sign(self, signer: Signer, *, to: str | None, data: bytes, gas: int, nonce: int,
             value: int = 0) -> SignedTx:
        return signer.sign(chain_id=self.chain_id, nonce=nonce, to=to, data=data, gas=gas,
                           fees=self.fees.params(), value=value)

    def send_raw_batch(self, txs: Sequence[SignedTx]) -> list[SendResult]:
        """Broadcast signed transactions; a node that already has one answers 'accepted'."""
        answers = self.batch([("eth_sendRawTransaction", ["0x" + t.raw.hex()]) for t in txs])
        results = []
        for tx, answer in zip(txs, answers):
            if "error" not in answer:
                results.append(SendResult(tx.tx_hash, True))
                continue
            message = str(answer["error"].get("message", "")).lower()
            if any(m in message for m in ALREADY_KNOWN_MARKERS):
                results.append(SendResult(tx.tx_hash, True))
            elif any(m in message for m in NONCE_TOO_LOW_MARKERS):
                results.append(SendResult(tx.tx_hash, False, nonce_too_low=True, error=message))
            else:
                results.append(SendResult(tx.tx_hash, False, error=message))
        return results

    def send_pipelined(self, batches: Iterable[Sequence[SignedTx]], in_flight_max: int = 2) -> list[SendResult]:
        """Send batches while the caller's iterator prepares the next one.

        Signing is CPU work in this process; a batch send is mostly waiting on the node. One
        sender thread overlaps the two, with at most ``in_flight_max`` batches queued, so memory
        stays bounded however long the stream.
        """
        from concurrent.futures import Future, ThreadPoolExecutor

        results: list[SendResult] = []
        pending: list[Future] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-send") as pool:
            for batch in batches:
                pending.append(pool.submit(self.send_raw_batch, list(batch)))
                while len(pending) >= in_flight_max:
                    results.extend(pending.pop(0).result())
            for fut in pending:
                results.extend(fut.result())
        return results

    def wait_for_room(self, sender: str, next_nonce: int, inflight_max: int, timeout_s: float = 600.0,
                      poll_s: float = 0.01) -> None:
        """Blocks until ``sender`` has fewer than ``inflight_max`` transactions below
        ``next_nonce`` still unmined, so a flood never parks more than that in the node's pool
        (an automining anvil slows down super-linearly with its pool, and grows without bound)."""
        deadline = time.monotonic() + timeout_s
        while next_nonce - self.nonces([sender])[sender] >= inflight_max:
            if time.monotonic() > deadline:
                raise ChainUnavailableError(f"{sender}: no room in {timeout_s}s ({inflight_max} in flight)")
            time.sleep(poll_s)

    def receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
        answers = self.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        out: dict[str, Receipt | None] = {}
        for h, answer in zip(tx_hashes, answers):
            if "error" in answer:
                raise RpcError("eth_getTransactionReceipt", dict(answer["error"]))
            r = answer.get("result")
            out[h] = Receipt.from_rpc(r) if r else None
        return out

    def canonical_receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
        """Like :meth:`receipts`, but a receipt whose block is not the canonical chain's block at
        its height counts as none: a node restarted from a torn state dump can still hold the
        receipt of a transaction whose block it lost (one more round trip, for the block hashes)."""
        out = self.receipts(tx_hashes)
        numbers = sorted({r.block_number for r in out.values() if r is not None})
        if numbers:
            canonical = self.block_hashes(numbers)
            for h, r in out.items():
                if r is not None and canonical[r.block_number] != r.block_hash:
                    out[h] = None
        return out

    def wait_for_receipts(self, tx_hashes: Iterable[str], timeout_s: float) -> dict[str, Receipt]:
        """Polls with bounded exponential backoff until every receipt is in or the time is up."""
        waiting = list(dict.fromkeys(tx_hashes))
        found: dict[str, Receipt] = {}
        delay = RECEIPT_POLL_INITIAL_S
        deadline = time.monotonic() + timeout_s
        while waiting:
            for h, r in self.receipts(waiting).items():
                if r is not None:
                    found[h] = r
            waiting = [h for h in waiting if h not in found]
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, RECEIPT_POLL_MAX_S)
        return found

    def transact(self, signer: Signer, *, to: str | None, data: bytes, gas: int,
                 nonce: int | None = None, timeout_s: float = 60.0, value: int = 0) -> Receipt:
        """Sign, send and wait for one transaction (deployment and tooling; the service's own
        state changes go through the outbox dispatcher). Raises ChainRevertError on revert."""
        if nonce is None:
            nonce = self.pending_nonce(signer.address)
        tx = self.sign(signer, to=to, data=data, gas=gas, nonce=nonce, value=value)
        (result,) = self.send_raw_batch([tx])
        if not result.accepted:
            raise RpcError("eth_sendRawTransaction", {"message": result.error or "rejected"})
        receipts = self.wait_for_receipts([tx.tx_hash], timeout_s)
        receipt = receipts.get(tx.tx_hash)
        if receipt is None:
            raise ChainUnavailableError(f"no receipt for {tx.tx_hash} within {timeout_s}s")
        if receipt.status != 1:
            raise self.revert_reason(receipt, signer.address, to, data, gas)
        return receipt

    def estimate_gas(self, sender: str, to: str | None, data: bytes) -> int:
        tx = {"from": sender, "data": "0x" + data.hex()}
        if to:
            tx["to"] = to
        try:
            return int(self.rpc("eth_estimateGas", [tx]), 16)
        except RpcError as exc:
            raise self.revert_error(exc.error, "estimateGas") from exc

    # -- logs -----------------------------------------------------------------------------------

    def get_logs(self, addresses: Sequence[str], from_block: int, to_block: int) -> list[DecodedLog]:
        raw = self.rpc("eth_getLogs", [{"address": list(addresses), "fromBlock": hex(from_block),
                                        "toBlock": hex(to_block)}])
        return self.decode_logs(raw)

    def logs_page(self, addresses: Sequence[str], after: int, to_block: int) -> tuple[str | None, list[DecodedLog], str | None]:
        """(hash of block ``after``, the logs of blocks ``after`` + 1 .. ``to_block``, hash of
        ``to_block``) in ONE HTTP batch, so all three come from the same node: a node restarted
        between separate calls (a supervised anvil is back within a second, its chain regrown from
        an older state) could otherwise give logs of one chain and a hash of another. A hash is
        None when the chain has no such block (``after`` < 0 asks for none)."""
        calls: list[tuple[str, list]] = [("eth_getLogs", [{"address": list(addresses), "fromBlock": hex(after + 1),
                                                           "toBlock": hex(to_block)}]),
                                         ("eth_getBlockByNumber", [hex(to_block), False])]
        if after >= 0:
            calls.append(("eth_getBlockByNumber", [hex(after), False]))
        answers = self.batch(calls)
        for (method, _), answer in zip(calls, answers):
            if "error" in answer:
                raise RpcError(method, dict(answer["error"]))
        logs = self.decode_logs(answers[0]["result"] or [])
        to_hash = (answers[1].get("result") or {}).get("hash")
        after_hash = (answers[2].get("result") or {}).get("hash") if after >= 0 else None
        return after_hash, logs, to_hash

    def decode_logs(self, raw_logs: Iterable[dict]) -> list[DecodedLog]:
        out = []
        for log in raw_logs:
            topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
            if not topics:
                continue
            ev = self.contracts.event_by_topic(topics[0])
            if ev is None:
                continue
            out.append(DecodedLog(
                contract=ev.contract, event=ev.name, address=checksum_address(log["address"]),
                args=ev.decode(topics, bytes.fromhex(log["data"][2:])), tx_hash=log["transactionHash"],
                log_index=int(log["logIndex"], 16), block_number=int(log["blockNumber"], 16),
                block_hash=log["blockHash"],
                block_timestamp=int(log["blockTimestamp"], 16) if log.get("blockTimestamp") else None,
            ))
        return out
