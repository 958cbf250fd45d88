"""Runs last in tests/console: every request any console page made during the package's browser
tests (scripts, styles, images, fonts, fetches) went to the service itself, or, from the proof
page, to its chain's JSON-RPC endpoint; and no template names an outside URL."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ledger_api import console

TEMPLATES = Path(console.__file__).resolve().parent / "templates"
STATIC = Path(console.__file__).resolve().parent.parent / "static" / "console"
URL_ATTR = re.compile(r"""(?:src|href|action)\s*=\s*["']([^"'{]+)""")


def test_no_template_or_console_script_names_another_host():
    for path in TEMPLATES.glob("*.html"):
        for url in URL_ATTR.findall(path.read_text()):
            assert not re.match(r"^(?:[a-z]+:)?//", url), f"{path.name}: {url}"
    for path in (STATIC / "wallet.js", STATIC / "verify.js", STATIC / "console.css"):
        assert not re.search(r"https?://", path.read_text()), path.name


def test_no_page_asked_another_host(requests_seen, request):
    if not requests_seen:  # this module alone: the browser tests did not run
        return
    demo = request.getfixturevalue("demo")
    service = urlsplit(demo.api).netloc
    chain = urlsplit(demo.rpc).netloc
    foreign = [(kind, url) for kind, url in requests_seen
               if not url.startswith(("data:", "about:", "blob:"))
               and urlsplit(url).netloc != service and not (kind in ("fetch", "xhr") and urlsplit(url).netloc == chain)]
    assert not foreign, foreign
    kinds = {kind for kind, _ in requests_seen}
    assert {"document", "script", "stylesheet"} <= kinds, kinds


def test_the_vendored_merkle_tree_bundle_is_the_pinned_packages_build():
    """merkle-tree.min.js (the proof page's OpenZeppelin library) is exactly what
    scripts/build-console-merkle.sh builds from the pinned @openzeppelin/merkle-tree with the pinned
    esbuild, with its licences and version line; it makes no request of its own (no fetch, no URL
    it loads: the page's JSON-RPC calls are verify.js's)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "node_modules" / ".bin" / "esbuild").exists():
        pytest.skip("npm packages not installed (make deps installs them)")
    run = subprocess.run([str(root / "scripts" / "build-console-merkle.sh"), "--check"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    bundle = (STATIC / "merkle-tree.min.js").read_text()
    assert "OZMerkle" in bundle and not re.search(r"\bfetch\(|XMLHttpRequest|importScripts", bundle)
    assert "@openzeppelin/merkle-tree 1.0.8" in (STATIC / "merkle-tree.LICENSE").read_text()
