"""Runs last in tests/console: every request any console page made during the package's browser
tests (scripts, styles, images, fonts, fetches) went to the service itself, or, from the proof
page, to its chain's JSON-RPC endpoint; and no template names an outside URL."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

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
