"""Fault injection against the real service: `ledger up --demo` as a process group of its own,
its managed anvil or an external one, SQLite or PostgreSQL, a mixed load over real HTTP, faults
(SIGKILL of the service, of its chain, of both, an external node paused or killed and restarted
from its state file), and a check against the chain's own events and receipts.

Used by ``tests/faults`` (short) and ``bench/bench_soak.py`` (long). The load is what members and
providers do: single settlements, batches, receivable registrations, and signed payment
notifications of the demo providers (each delivered twice, and once more after the faults, as a
provider retries). A request that gets no answer (the service died under it) is retried with the
same Idempotency-Key until the service answers again: so every request ends accepted (2xx) or
refused, and the check is that every accepted one is on chain exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx

from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port, state_file_complete
from settlement.chain.client import ChainClient
from settlement.chain.managed import copy_if_whole
from settlement.core.money import Money
from settlement.custody.governors import demo_governance
from settlement.providers.testing import simulated_payment

START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
CHAIN_BACK_WAIT_S = 15.0  # a supervised managed chain is back within this; else the service is restarted
HTTP_TIMEOUT_S = 60.0
RETRY_FOR_S = 240.0  # an unanswered request is retried (same Idempotency-Key) this long
DRAIN_QUIET_S = 10.0  # the outbox empty this long: what is not on chain by then is lost
LOG_RANGE_MAX = 5_000
PROVIDERS = ("alipay", "wechatpay", "stripe")


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    """One data dir with its service (and, for ``external``, a node the test runs itself)."""

    home: Path
    database_url: str | None = None
    external: bool = False
    block_time_s: int | None = None  # external node: interval mining (production emulation)
    api_port: int = field(default_factory=free_port)
    anvil_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    node: ManagedAnvil | None = None
    starts: int = 0

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def rpc(self) -> str:
        return f"http://127.0.0.1:{self.anvil_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ, LEDGER_HOME=str(self.home), LEDGER_API_PORT=str(self.api_port),
                   LEDGER_ANVIL_PORT=str(self.anvil_port), LEDGER_LOG_FORMAT="text")
        root = str(_repo_root())
        env["PYTHONPATH"] = os.pathsep.join([root, str(_repo_root() / "ledger-anchors")]
                                            + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        env.pop("LEDGER_RPC_URL", None)
        env.pop("LEDGER_DATABASE_URL", None)
        if self.database_url:
            env["LEDGER_DATABASE_URL"] = self.database_url
        if self.external:
            params, _ = demo_governance()
            env["LEDGER_RPC_URL"] = self.rpc
            env["LEDGER_GOVERNORS"] = ",".join(f"{g.member_id}:{g.address}" for g in params.governors)
            env["LEDGER_GOVERNANCE_THRESHOLD"] = str(params.threshold)
            env["LEDGER_GOVERNANCE_DELAY_S"] = str(params.delay_s)
        return env

    # -- the external node --------------------------------------------------------------------

    def start_node(self) -> None:
        assert self.external
        if self.node is None:
            self.node = ManagedAnvil(AnvilConfig(port=self.anvil_port, block_time_s=self.block_time_s,
                                                 state_path=self.home.parent / f"{self.home.name}-node-state.json",
                                                 log_path=self.home.parent / f"{self.home.name}-node.log"))
        self.node.start()

    # -- the service --------------------------------------------------------------------------

    @property
    def state_restores(self) -> int:
        """Managed chain: how often the service found anvil's state file cut short by a kill and
        restored its last good copy (settlement.chain.managed), from the service's log."""
        try:
            return self.log_path.read_bytes().count(b"was cut short (")
        except OSError:
            return 0

    def start(self) -> None:
        self._start()

    def _start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.external and (self.node is None or self.node.process is None):
            self.start_node()
        log = open(self.home.parent / f"{self.home.name}-up.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "ledger_api.cli", "up", "--demo"], env=self.env(),
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd=str(self.home.parent))
        log.close()
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ledger up exited with {self.proc.returncode}; see {self.log_path}")
            try:
                r = httpx.get(f"{self.api}/health", timeout=5)
                if r.status_code == 200 and (self.home / "demo.json").is_file():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the service did not answer within {START_TIMEOUT_S}s; see {self.log_path}")

    @property
    def log_path(self) -> Path:
        return self.home.parent / f"{self.home.name}-up.log"

    def demo(self) -> dict:
        return json.loads((self.home / "demo.json").read_text())

    def kill_service(self) -> None:
        """SIGKILL of the service's process group (what the OOM killer or a power cut does)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def managed_chain_pids(self) -> list[int]:
        """The managed anvil's processes: an anvil listening on this stack's chain port."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and b"anvil" in Path(argv[0].decode(errors="replace")).name.encode() \
                    and str(self.anvil_port).encode() in argv and b"--port" in argv:
                pids.append(int(entry.name))
        return pids

    def chain_answers(self) -> bool:
        try:
            r = httpx.post(self.rpc, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=2)
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        """Stop everything this stack started (service, leftover managed anvil, external node)."""
        try:
            self.stop()
        finally:
            for pid in self.managed_chain_pids():
                if not self.external:
                    _kill(pid, signal.SIGKILL)
            if self.node is not None:
                if self.node.process is not None and self.node.process.poll() is None:
                    _kill(self.node.process.pid, signal.SIGCONT)
                self.node.stop()


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# -- faults -----------------------------------------------------------------------------------------

MANAGED_FAULTS = ("kill-service", "kill-chain", "kill-both")
EXTERNAL_FAULTS = ("pause-node", "restart-node", "kill-service")


def inject(stack: Stack, fault: str, *, pause_s: float = 10.0) -> None:
    """One fault, and whatever brings the system back (a restart of what died, unless the
    service restarts its managed chain itself)."""
    if fault == "kill-service":
        stack.kill_service()
        stack.start()
    elif fault == "kill-chain":
        assert not stack.external
        for pid in stack.managed_chain_pids():
            _kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + CHAIN_BACK_WAIT_S
        while time.monotonic() < deadline and not stack.chain_answers():
            time.sleep(0.2)
        if not stack.chain_answers():  # not supervised: the operator restarts the service
            stack.stop()
            stack.start()
    elif fault == "kill-both":
        assert not stack.external
        pids = stack.managed_chain_pids()
        if stack.proc is not None:
            os.killpg(stack.proc.pid, signal.SIGKILL)
        for pid in pids:
            _kill(pid, signal.SIGKILL)
        if stack.proc is not None:
            stack.proc.wait()
        stack.proc = None
        stack.start()
    elif fault == "pause-node":
        assert stack.external and stack.node is not None and stack.node.process is not None
        os.killpg(stack.node.process.pid, signal.SIGSTOP)
        time.sleep(pause_s)
        os.killpg(stack.node.process.pid, signal.SIGCONT)
    elif fault == "restart-node":
        assert stack.external and stack.node is not None
        state = stack.node.config.state_path
        assert state is not None
        good = _keep_whole_copy(state)
        stack.node.kill()  # SIGKILL: the blocks since its last state dump are lost
        if not state_file_complete(state):
            # Killed while it rewrote its state file in place (anvil does): an operator restarts
            # the node from its last whole copy, an older state (more blocks lost: the service
            # puts their transactions back). A Besu or Geth node keeps a database instead.
            assert good is not None, "the node was killed mid-dump and no whole copy of its state was kept"
            os.replace(good, state)
        stack.node.start()
    else:
        raise ValueError(f"unknown fault {fault!r}")


def _keep_whole_copy(state: Path, attempts: int = 20) -> Path | None:
    """A whole copy of the node's state file beside it, as an operator's periodic backup would be
    (the managed chain's own copy: a copy taken while anvil rewrote the file is dropped and tried
    again; an earlier whole copy is kept until then)."""
    good = state.with_name(state.name + ".good")
    for _ in range(attempts):
        if state.exists() and copy_if_whole(state, good) is not None:
            return good
        time.sleep(0.1)
    return good if good.exists() and state_file_complete(good) else None


# -- load -------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the load did: accepted (2xx) requests and what they should put on chain."""

    settlements: set[str] = field(default_factory=set)  # accepted settlement ids (single and batch)
    receivables: set[str] = field(default_factory=set)
    payments: dict[str, dict] = field(default_factory=dict)  # settlement id -> the notification, applied
    requests: Counter = field(default_factory=Counter)  # kind -> accepted
    refused: Counter = field(default_factory=Counter)  # kind -> 4xx answers
    unanswered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Load:
    """Mixed load in ``threads`` threads until stop(); ``rate_per_s`` requests per second in all."""

    def __init__(self, stack: Stack, ledger: Ledger, *, threads: int = 3, rate_per_s: float = 15.0,
                 batch_size: int = 5, seed: int = 1) -> None:
        self.stack, self.ledger = stack, ledger
        self.threads, self.rate_per_s, self.batch_size = threads, rate_per_s, batch_size
        self.random = random.Random(seed)
        demo = stack.demo()
        self.keys = {m["id"]: m["api_key"] for m in demo["members"]}
        self.providers = demo["providers"]
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._payable: list[tuple[str, dict]] = []  # (settlement id, its public form) to pay later
        self._n = 0
        self._n_lock = threading.Lock()

    def _next(self) -> int:
        with self._n_lock:
            self._n += 1
            return self._n

    def start(self) -> Load:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), name=f"load-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(timeout=RETRY_FOR_S + HTTP_TIMEOUT_S)

    def _run(self, index: int) -> None:
        http = httpx.Client(base_url=self.stack.api, timeout=HTTP_TIMEOUT_S)
        interval = self.threads / self.rate_per_s
        kinds = ("single", "single", "batch", "receivable", "payment", "payment")
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                kind = self.random.choice(kinds)
                getattr(self, f"_{kind}")(http)
                self._stop.wait(max(0.0, interval - (time.monotonic() - t0)))
        finally:
            http.close()

    # -- requests, each retried with its key until answered -----------------------------------

    def _send(self, http: httpx.Client, kind: str, method: str, url: str, **kw: object) -> httpx.Response | None:
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            try:
                r = http.request(method, url, **kw)  # type: ignore[arg-type]
                if r.status_code < 500:
                    if r.status_code >= 400:
                        with self.ledger.lock:
                            self.ledger.refused[kind] += 1
                    return r
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                with self.ledger.lock:
                    self.ledger.unanswered += 1
                return None
            time.sleep(0.5)

    def _auth(self, member: str, key: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.keys[member]}"}
        if key:
            h["Idempotency-Key"] = key
        return h

    def _settlement_body(self) -> dict:
        n = self._next()
        tag = f"{os.getpid()}-{self.stack.starts}-{n}-{self.random.randrange(10**9)}"
        return {"client_reference": f"F-{tag}", "payee": "supplier", "source": {"value": 10_000 + n, "currency": "USD"},
                "target": {"value": 10_000 + n, "currency": "USD"}, "fx_rate": "1", "purpose_code": "GDDS",
                "payment_reference": f"FP-{tag}"}

    def _single(self, http: httpx.Client) -> None:
        body = self._settlement_body()
        r = self._send(http, "single", "POST", "/v1/settlements", json=body,
                       headers=self._auth("retailer", body["client_reference"]))
        if r is not None and r.status_code in (200, 201):
            s = r.json()
            with self.ledger.lock:
                self.ledger.settlements.add(s["id"])
                self.ledger.requests["single"] += 1
            self._payable.append((s["id"], body))

    def _batch(self, http: httpx.Client) -> None:
        items = [self._settlement_body() for _ in range(self.batch_size)]
        r = self._send(http, "batch", "POST", "/v1/settlements:batch", json={"items": items},
                       headers=self._auth("retailer", items[0]["client_reference"] + "-b"))
        if r is not None and r.status_code in (200, 201):
            data = r.json()["data"]
            with self.ledger.lock:
                self.ledger.settlements.update(d["id"] for d in data)
                self.ledger.requests["batch"] += 1

    def _receivable(self, http: httpx.Client) -> None:
        n = self._next()
        today = date.today()
        body = {"buyer_id": "buyer", "invoice_number": f"FI-{os.getpid()}-{self.stack.starts}-{n}-"
                                                       f"{self.random.randrange(10**9)}",
                "face_value": {"value": 1_000_000 + n, "currency": "CNY"},
                "issue_date": (today - timedelta(days=5)).isoformat(), "due_date": (today + timedelta(days=60)).isoformat()}
        r = self._send(http, "receivable", "POST", "/v1/receivables", json=body,
                       headers=self._auth("supplier", body["invoice_number"]))
        if r is not None and r.status_code in (200, 201, 202):
            with self.ledger.lock:
                self.ledger.receivables.add(r.json()["id"])
                self.ledger.requests["receivable"] += 1

    def _payment(self, http: httpx.Client) -> None:
        if not self._payable:
            return self._single(http)
        sid, body = self._payable.pop(0)
        provider = PROVIDERS[self._next() % len(PROVIDERS)]
        creds = self.providers[provider]
        amount = Money(body["target"]["value"], body["target"]["currency"])
        note = simulated_payment(provider, creds, body["payment_reference"], amount)
        delivery = {"provider": provider, "account": creds["account"], "body": note.body, "headers": dict(note.headers)}
        self.deliver(http, sid, delivery)

    def deliver(self, http: httpx.Client, sid: str, delivery: dict) -> None:
        """One delivery of a notification; providers retry, so each is sent twice."""
        for _ in range(2):
            r = self._send(http, "payment", "POST", f"/v1/callbacks/{delivery['provider']}/{delivery['account']}",
                           content=delivery["body"], headers=delivery["headers"])
            if r is not None and r.status_code < 300:
                with self.ledger.lock:
                    if sid not in self.ledger.payments:
                        self.ledger.requests["payment"] += 1
                    self.ledger.payments[sid] = delivery

    def redeliver_all(self) -> None:
        """After the faults: every notification once more, as a provider that never got an
        answer it trusted would."""
        with httpx.Client(base_url=self.stack.api, timeout=HTTP_TIMEOUT_S) as http:
            for sid, delivery in list(self.ledger.payments.items()):
                self._send(http, "payment", "POST", f"/v1/callbacks/{delivery['provider']}/{delivery['account']}",
                           content=delivery["body"], headers=delivery["headers"])


# -- the check, against the chain ----------------------------------------------------------------


@dataclass
class Verdict:
    accepted: int
    on_chain: int
    lost: list[str]
    doubled: list[str]
    confirmed_without_receipt: list[str]
    drained: bool
    detail: dict
    # Accepted, without an event, but the contract's state holds the effect: a node restarted
    # from a torn state dump (anvil writes accounts and blocks apart) kept the effect of its last
    # transactions and lost the transactions. Exactly once (the contracts refuse a second), never
    # shown confirmed (no receipt); counted apart from ``lost``.
    unrecorded: list[str] = field(default_factory=list)
    # Accepted, not on chain, while the service's outbox still held rows when counting stopped
    # (not drained in time): not counted lost, since they may still land; not ok either.
    pending: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.doubled and not self.confirmed_without_receipt and not self.pending


def chain_counts(stack: Stack) -> tuple[Counter, Counter, Counter]:
    """Per id: SettlementRecorded, SettlementPaid and ReceivableRegistered events on the canonical
    chain (logs come only from successful transactions)."""
    demo = stack.demo()
    client = ChainClient(demo["rpc"])
    addresses = [demo["contracts"]["SettlementLedger"], demo["contracts"]["ReceivableRegistry"]]
    manifest = json.loads((stack.home / "deployment.json").read_text())
    start = int(manifest.get("deploy_block", 0))
    head = client.block_number()
    recorded, paid, registered = Counter(), Counter(), Counter()
    for lo in range(start, head + 1, LOG_RANGE_MAX):
        for lg in client.get_logs(addresses, lo, min(head, lo + LOG_RANGE_MAX - 1)):
            if lg.event == "SettlementRecorded":
                recorded[_hex(lg.args["id"])] += 1
            elif lg.event == "SettlementPaid":
                paid[_hex(lg.args["id"])] += 1
            elif lg.event == "ReceivableRegistered":
                registered[_hex(lg.args["receivableId"])] += 1
    return recorded, paid, registered


def _hex(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value).lower()


def confirmed_without_receipt(stack: Stack) -> tuple[list[str], int]:
    """Settlements the API shows confirmed whose transaction has no receipt on the chain, and how
    many it shows confirmed."""
    demo = stack.demo()
    client = ChainClient(demo["rpc"])
    key = next(m["api_key"] for m in demo["members"] if m["id"] == "retailer")
    shown: dict[str, str] = {}
    with httpx.Client(base_url=stack.api, timeout=HTTP_TIMEOUT_S) as http:
        cursor = None
        while True:
            params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            r = http.get("/v1/settlements", params=params, headers={"Authorization": f"Bearer {key}"})
            r.raise_for_status()
            page = r.json()
            for s in page["data"]:
                chain = s["chain"]
                if chain["status"] == "confirmed":
                    assert chain["tx_hash"], f"settlement {s['id']} confirmed without a transaction hash"
                    shown[s["id"]] = chain["tx_hash"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    hashes = sorted(set(shown.values()))
    receipts: dict = {}
    for i in range(0, len(hashes), 500):
        receipts.update(client.receipts(hashes[i:i + 500]))
    return sorted(sid for sid, h in shown.items() if receipts.get(h) is None or receipts[h].status != 1), len(shown)


def _without_event(ledger: Ledger, recorded: Counter, paid: Counter, registered: Counter,
                   sets: tuple[set, set, set] | None = None) -> list[tuple[str, str]]:
    settlements, payments, receivables = sets or (ledger.settlements, set(ledger.payments), ledger.receivables)
    return ([("recorded", x) for x in settlements if recorded[_hex(x)] == 0]
            + [("paid", x) for x in payments if paid[_hex(x)] == 0]
            + [("registered", x) for x in receivables if registered[_hex(x)] == 0])


def outbox_depth(stack: Stack) -> int | None:
    """Rows the service still has to get on chain (pending, signed, sent), from /health with the
    operator's key; None when it does not answer."""
    try:
        key = (stack.home / "operator-api-key").read_text().strip()
        r = httpx.get(f"{stack.api}/health", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        depth = r.json().get("store", {}).get("outbox_depth")
        return int(depth) if depth is not None else None
    except (OSError, ValueError, httpx.HTTPError):
        return None


def verify(stack: Stack, ledger: Ledger, *, timeout_s: float = 180.0) -> Verdict:
    """Waits until every accepted request is on chain, or until the service has nothing left to
    send (its outbox empty for ``DRAIN_QUIET_S``: what is missing then will not land by itself),
    at most ``timeout_s``; then counts. A request missing while the outbox still holds rows at the
    deadline is counted ``pending`` (not drained in time), not lost: it may still land."""
    deadline = time.monotonic() + timeout_s
    empty_since: float | None = None
    depth: int | None = None
    while True:
        recorded, paid, registered = chain_counts(stack)
        missing = _without_event(ledger, recorded, paid, registered)
        if not missing:
            break
        depth = outbox_depth(stack)
        now = time.monotonic()
        if depth == 0:
            empty_since = empty_since if empty_since is not None else now
            if now - empty_since >= DRAIN_QUIET_S:
                break
        else:
            empty_since = None
        if now > deadline:
            break
        time.sleep(2)
    drained = not missing or depth == 0
    unrecorded = [(what, x) for what, x in missing if _in_state(stack, what, x)]
    left = [f"{what} {x}" for what, x in missing if (what, x) not in set(unrecorded)]
    doubled = ([s for s, n in recorded.items() if n > 1] + [s for s, n in paid.items() if n > 1]
               + [r for r, n in registered.items() if n > 1])
    accepted = len(ledger.settlements) + len(ledger.payments) + len(ledger.receivables)
    on_chain = accepted - len(missing)
    unbacked, shown_confirmed = confirmed_without_receipt(stack)
    return Verdict(accepted=accepted, on_chain=on_chain, lost=left if drained else [], doubled=doubled,
                   unrecorded=[f"{what} {x}" for what, x in unrecorded],
                   confirmed_without_receipt=unbacked, drained=drained, pending=[] if drained else left,
                   detail={"shown_confirmed": shown_confirmed, "requests": dict(ledger.requests), "refused": dict(ledger.refused),
                           "unanswered": ledger.unanswered, "settlements": len(ledger.settlements),
                           "payments": len(ledger.payments), "receivables": len(ledger.receivables),
                           "outbox_depth_at_count": depth})


# ISettlementLedger.State: NONE, INSTRUCTED, PAID, IN_CYCLE, SETTLED, CANCELLED, REFUNDED
_PAID_STATES = {2, 3, 4, 6}


def _in_state(stack: Stack, what: str, item: str) -> bool:
    """Whether the contracts' state holds ``item`` ``what`` (recorded, paid, registered)."""
    demo = stack.demo()
    client = ChainClient(demo["rpc"])
    ident = bytes.fromhex(item[2:])
    if what == "registered":
        (status,) = client.call("ReceivableRegistry", demo["contracts"]["ReceivableRegistry"], "statusOf", [ident])
        return int(status) != 0
    state = int(client.call("SettlementLedger", demo["contracts"]["SettlementLedger"], "getSettlement", [ident])[0])
    return state in _PAID_STATES if what == "paid" else state != 0


def drain_time(stack: Stack, ledger: Ledger, since: float, timeout_s: float = 300.0) -> float | None:
    """Seconds from ``since`` (a monotonic time, the fault) until everything accepted so far is
    on chain (by its event, or in the contracts' state for a torn node, see ``Verdict``); None
    if not within ``timeout_s``."""
    with ledger.lock:
        sets = (set(ledger.settlements), set(ledger.payments), set(ledger.receivables))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            missing = _without_event(ledger, *chain_counts(stack), sets=sets)
            if len(missing) <= 20 and all(_in_state(stack, what, x) for what, x in missing):
                return time.monotonic() - since
        except Exception:  # the chain is still coming back
            pass
        time.sleep(1)
    return None
