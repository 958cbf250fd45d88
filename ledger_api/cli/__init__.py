"""The `ledger` command: `ledger up [--demo]`, deploy, workers, members, reconciliation, proofs.

Each feature's subcommand module registers its own parsers; this file gathers them and runs `up`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable

import uvicorn

from ledger_api.app import create_app, service_version
from ledger_api.bootstrap import build_runtime, tune_interpreter
from ledger_api.cli import anchors as cli_anchors
from ledger_api.cli import governance as cli_governance
from ledger_api.cli.instance import InstanceLock, check_port_free
from ledger_api.cli import members as cli_members
from ledger_api.cli import payments as cli_payments
from ledger_api.cli import sign as cli_sign
from ledger_api.cli import status as cli_status
from ledger_api.cli import webhooks as cli_webhooks
from ledger_api.demo import ensure_operator_member, seed_demo
from ledger_api.logs import configure_logging
from ledger_api.settings import Settings
from settlement.chain.managed import ManagedChain, managed_anvil_config
from settlement.chain.transport import redact_url
from settlement.core.errors import LedgerError
from settlement.domains.events.delivery import DeliveryWorker
from settlement.pipeline.workers import Workers
from settlement.store.db import migrate
from settlement.wiring import build_registry


def say(message: str) -> None:
    print(f"[ledger] {message}", flush=True)


def runtime_factory(settings: Settings, **kwargs: object) -> Callable[[], object]:
    def make() -> object:
        return build_runtime(settings, **kwargs)
    return make


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_format, settings.log_level)
    home = settings.home_dir
    say(f"home: {home}")
    # Before anything starts or is written: one service per data dir, and a free API port.
    instance = InstanceLock(home).acquire("up", api=settings.api_url)
    check_port_free(settings.api_host, settings.api_port, "API", "LEDGER_API_PORT")
    tune_interpreter()

    def _terminate(signum: int, _frame: object) -> None:
        # SIGTERM anywhere (during start-up, or re-raised by uvicorn after its graceful
        # shutdown) unwinds through the finally below, which stops workers and anvil cleanly.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    anvil = None
    if settings.managed_chain:
        # Supervised, dies with this process; a foreign node on the port is refused (docs/operations.md).
        anvil = ManagedChain(home, managed_anvil_config(
            home, host=settings.anvil_host, port=settings.anvil_port, block_time_s=settings.anvil_block_time_s,
            zero_fees=settings.fee_mode == "zero"), progress=say).start()
    else:
        say(f"chain: using {redact_url(settings.rpc_url)}")
    workers = None
    delivery = None
    try:
        runtime = build_runtime(settings, deploy_contracts=True, progress=say)
        # The bootstrap window: the operator (and, for the demo, the demo consortium) are founding
        # members, onboarded by the deployer's key; then the window is sealed and the key keeps no
        # admin power. Anything later goes through governance.
        ensure_operator_member(runtime, progress=say)
        if args.demo:
            path = seed_demo(runtime, settings, progress=say)
            say(f"demo consortium ready: {path}")
        workers = Workers(runtime, build_registry(), batch_size=settings.dispatch_batch_size,
                          dispatch_interval_s=settings.dispatch_interval_ms / 1000,
                          follow_interval_s=settings.follow_interval_ms / 1000,
                          confirmations=settings.confirmations,
                          block_range_max=settings.follow_block_range_max,
                          inflight_max=settings.max_inflight_per_signer).start()
        say("workers: outbox dispatcher and chain follower running")
        if settings.webhook_delivery_in_process:  # webhooks: its own threads, off the request path
            delivery = DeliveryWorker(runtime).start()
        cli_governance.seal_when_applied(runtime, say, through_outbox=True)
        app = create_app(runtime, settings)
        say(f"api: {settings.api_url} (OpenAPI at {settings.api_url}/docs); Ctrl-C to stop")
        say(f"console: {settings.api_url}/console/ (sign in with an API key"
            + (f" from {settings.home_dir / 'demo.json'})" if args.demo else ")"))
        # uvicorn handles SIGINT/SIGTERM: run() returns, and the finally below stops the rest.
        # log_config=None: uvicorn's own lines go through our handler (JSON); the access log is
        # ledger_api.logs.RequestLogMiddleware's.
        uvicorn.Server(uvicorn.Config(app, host=settings.api_host, port=settings.api_port,
                                      log_level="warning", access_log=False, log_config=None)).run()
    finally:
        if delivery is not None:
            delivery.stop()
        if workers is not None:
            say("stopping workers")
            workers.stop()
        if anvil is not None:
            say("stopping anvil (writing its state)")
            anvil.stop()
        instance.release()
        say("stopped")
    return 0


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    """Deploy what is missing. The bootstrap window stays open for the founding members
    (`ledger members add`), to be closed with `ledger governance seal` (`ledger up` seals itself)."""
    runtime = build_runtime(settings, deploy_contracts=True, progress=say)
    assert runtime.manifest is not None
    for name, address in runtime.manifest.addresses.items():
        print(f"{name}\t{address}")
    if runtime.bootstrap_open():
        say("the bootstrap window is open: onboard the founding members (`ledger members add`), then seal it "
            "(`ledger governance seal`); the service reports not ready until then")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Dispatcher and follower without the API (to scale out, or to drain an outbox)."""
    configure_logging(settings.log_format, settings.log_level)
    instance = InstanceLock(settings.home_dir).acquire("worker")
    tune_interpreter()
    runtime = build_runtime(settings, progress=say)
    if runtime.manifest is None:
        say("no deployment manifest: run `ledger deploy` or `ledger up` first")
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workers = Workers(runtime, build_registry(), batch_size=args.batch_size or settings.dispatch_batch_size,
                      dispatch_interval_s=settings.dispatch_interval_ms / 1000,
                      follow_interval_s=settings.follow_interval_ms / 1000,
                      confirmations=settings.confirmations,
                      inflight_max=settings.max_inflight_per_signer).start()
    delivery = DeliveryWorker(runtime).start() if settings.webhook_delivery_in_process else None
    say("workers running; Ctrl-C to stop")
    stop.wait()
    if delivery is not None:
        delivery.stop()
    workers.stop()
    instance.release()
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings.effective_database_url)
    say("store migrated")
    return 0


EXIT_CODES_EPILOG = """\
exit codes:
  0    done: success, verified, everything matched; `status`: the service answers, healthy and ready
  1    failed: refused by the service, invalid or unreadable input, not verified, audit findings
  2    usage error (bad arguments); `anchors verify|audit`: the chain node could not be asked
  3    done, with something for a person to look at: `reconcile` queued exceptions;
       `simulate-payment`: the server recorded the notification as an exception
  4    the service could not be reached (`status`, `simulate-payment`)
  5    `status`: the service answers but is degraded or not ready
  130  interrupted (Ctrl-C)
(docs/api.md, "The command line")"""


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger",
                                     description="A permissioned ledger for payments and supply-chain finance",
                                     epilog=EXIT_CODES_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ledger {service_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start chain (unless LEDGER_RPC_URL), contracts, store, API and workers")
    up.add_argument("--demo", action="store_true", help="seed the demo consortium and write $LEDGER_HOME/demo.json")
    up.set_defaults(func=cmd_up)
    sub.add_parser("deploy", help="deploy missing contracts and write the manifest").set_defaults(func=cmd_deploy)
    w = sub.add_parser("worker", help="run the outbox dispatcher and chain follower only")
    w.add_argument("--batch-size", type=int, default=None)
    w.set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="apply store migrations").set_defaults(func=cmd_migrate)
    factory = runtime_factory(settings)
    # Feature commands, each registered by its own module.
    for module in (cli_members, cli_governance, cli_sign, cli_payments, cli_anchors, cli_status, cli_webhooks):
        module.register(sub, factory)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Plain text for people (unless something already set logging up); `up` and `worker`, the
    # service's processes, switch to LEDGER_LOG_FORMAT (JSON lines).
    configure_logging("text", logging.INFO, force=False)
    settings = Settings()
    args = build_parser(settings).parse_args(argv)
    try:
        return args.func(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear message, not a traceback, for expected failures
        if isinstance(exc, LedgerError):
            print(f"ledger: {exc.detail}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
