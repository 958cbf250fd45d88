"""The contract artifacts shipped in the package match the Solidity sources."""

import importlib.util
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _compile_module():
    spec = importlib.util.spec_from_file_location("compile_contracts", ROOT / "scripts" / "compile_contracts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_artifacts_are_fresh():
    assert _compile_module().stale_reason() is None, "run `make contracts` and commit the artifacts"


def test_an_edited_source_makes_artifacts_stale(tmp_path, monkeypatch):
    module = _compile_module()
    copy = tmp_path / "contracts"
    shutil.copytree(ROOT / "contracts", copy)
    monkeypatch.setattr(module, "CONTRACTS_DIR", copy)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "ARTIFACTS_DIR", ROOT / "settlement" / "chain" / "artifacts")
    # Same content under tmp_path: the relative paths and hashes agree, so still fresh...
    assert module.stale_reason() is None
    target = copy / "registry" / "ConsortiumRegistry.sol"
    target.write_text(target.read_text() + "\n// edited\n")
    assert "changed" in module.stale_reason()
