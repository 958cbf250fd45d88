"""Compile every contract under contracts/ into artifacts shipped inside the Python package.

Runs py-solc-x's ``compile_standard`` with a native ``solc`` when one of the pinned version is on
PATH, else with the solc-js compiler from ``node_modules`` behind ``scripts/solcjs-wrapper.js``.
Artifacts (ABI, bytecode, source hashes) go to ``settlement/chain/artifacts/`` so that running
the service needs no compiler. ``--check`` exits non-zero when the artifacts are stale.

Settings (pinned on purpose; changing them changes every deployed code hash):
- solc 0.8.28, optimizer on with 200 runs, via-IR off;
- evmVersion ``london``: a permissioned Besu/QBFT network on a London-era genesis has no PUSH0
  (Shanghai) nor MCOPY/transient storage (Cancun); london bytecode runs there and on anvil,
  whose default hardfork is newer and backwards compatible.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = ROOT / "contracts"
NODE_MODULES = ROOT / "node_modules"
ARTIFACTS_DIR = ROOT / "settlement" / "chain" / "artifacts"
WRAPPER = ROOT / "scripts" / "solcjs-wrapper.js"

SOLC_VERSION = "0.8.28"
EVM_VERSION = "london"
OPTIMIZER_RUNS = 200
# Contracts deployed by the service; every other compiled unit (interfaces, bases, libraries) is
# written too, for its ABI (errors and events), but flagged as not deployable.
REMAPPINGS = [
    "@openzeppelin/=node_modules/@openzeppelin/",
    "@safe-global/=node_modules/@safe-global/",
]


def source_files() -> list[Path]:
    return sorted(CONTRACTS_DIR.rglob("*.sol"))


def source_hashes() -> dict[str, str]:
    """sha256 of each project source, keyed by its path relative to the repository."""
    return {
        str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in source_files()
    }


def standard_input() -> dict:
    return {
        "language": "Solidity",
        "sources": {
            str(p.relative_to(ROOT)): {"content": p.read_text(encoding="utf-8")} for p in source_files()
        },
        "settings": {
            "remappings": REMAPPINGS,
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "metadata": {"bytecodeHash": "none"},
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "devdoc"]}
            },
        },
    }


def find_solc() -> str:
    """A native solc of the pinned version if present, else the solc-js wrapper."""
    native = shutil.which("solc")
    if native:
        import solcx

        try:
            if str(solcx.wrapper.get_solc_version(native)) == SOLC_VERSION:
                return native
        except Exception:  # a broken or foreign `solc` on PATH: fall back to solc-js
            pass
    if not (NODE_MODULES / "solc").is_dir():
        raise SystemExit("solc-js is not installed: run `npm ci` (or `make deps`) first")
    return str(WRAPPER)


def compile_all() -> dict:
    import solcx

    output = solcx.compile_standard(
        standard_input(),
        base_path=str(ROOT),
        allow_paths=[str(ROOT), str(NODE_MODULES)],
        solc_binary=find_solc(),
    )
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise SystemExit("\n".join(e["formattedMessage"] for e in errors))
    return output


def artifacts_from(output: dict) -> dict[str, dict]:
    artifacts: dict[str, dict] = {}
    for source, units in output["contracts"].items():
        if not source.startswith("contracts/"):
            continue
        for name, unit in units.items():
            if name in artifacts:
                raise SystemExit(f"two contracts named {name}: names must be unique")
            bytecode = unit["evm"]["bytecode"]["object"]
            artifacts[name] = {
                "contractName": name,
                "sourceName": source,
                "abi": unit["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + unit["evm"]["deployedBytecode"]["object"],
                "deployable": bool(bytecode),
            }
    return artifacts


def write(artifacts: dict[str, dict]) -> None:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS_DIR.glob("*.json"):
        old.unlink()
    for name, artifact in sorted(artifacts.items()):
        (ARTIFACTS_DIR / f"{name}.json").write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
    build_info = {
        "solcVersion": SOLC_VERSION,
        "evmVersion": EVM_VERSION,
        "optimizerRuns": OPTIMIZER_RUNS,
        "sources": source_hashes(),
        "contracts": sorted(artifacts),
    }
    (ARTIFACTS_DIR / "build-info.json").write_text(json.dumps(build_info, indent=1, sort_keys=True) + "\n")
    (ARTIFACTS_DIR / "__init__.py").touch()


def stale_reason() -> str | None:
    """Why the shipped artifacts do not match the sources, or None when they do."""
    info_path = ARTIFACTS_DIR / "build-info.json"
    if not info_path.exists():
        return "no artifacts: run `make contracts`"
    info = json.loads(info_path.read_text())
    if info.get("solcVersion") != SOLC_VERSION or info.get("evmVersion") != EVM_VERSION:
        return "compiler settings changed"
    if info.get("sources") != source_hashes():
        return "contract sources changed since the artifacts were built"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the artifacts are stale")
    parser.add_argument("--if-stale", action="store_true", help="compile only when stale")
    args = parser.parse_args()
    reason = stale_reason()
    if args.check:
        if reason:
            print(f"artifacts are stale: {reason}", file=sys.stderr)
            return 1
        return 0
    if args.if_stale and reason is None:
        return 0
    print(f"compiling {len(source_files())} contract sources with solc {SOLC_VERSION} ({EVM_VERSION})...")
    artifacts = artifacts_from(compile_all())
    write(artifacts)
    print(f"wrote {len(artifacts)} artifacts to {ARTIFACTS_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
