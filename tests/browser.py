"""Headless-Chromium helpers for the chart tests (a helper module, not a test module).

Uses Debian's Chromium (``/usr/bin/chromium``, or ``BROWSER_PATH``) driven by the Python
``playwright`` package; Playwright's own browser download is never used. The page is loaded from a
``file://`` URL with every other request aborted and recorded, so a page that needs the network
(a CDN, MathJax) shows up as a failure rather than a silent fetch.

When Chromium or playwright is missing the tests skip with the reason, except under CI (the ``CI``
environment variable set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: Flags for Chromium on these machines: no sandbox (root), no GPU, and no background networking,
#: whose connections the closed network refuses.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def chromium_path() -> str | None:
    """The Chromium binary to use: ``BROWSER_PATH``, else /usr/bin/chromium, else ``chromium`` on PATH."""
    candidates = [os.environ.get("BROWSER_PATH"), "/usr/bin/chromium", shutil.which("chromium")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def missing(reason: str) -> None:
    """Skip with ``reason``, or fail under CI where the browser is installed by .ci/run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser must be available)")
    pytest.skip(reason)


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        missing("Chromium not found: apt-get install chromium (or set BROWSER_PATH)")
    assert path is not None
    return path


@dataclass
class PageReport:
    """What happened while a page was open."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)


@contextmanager
def open_page(html_file: Path, *, width: int = 1600, height: int = 1000) -> Iterator[tuple[Any, PageReport]]:
    """Open ``html_file`` in headless Chromium; yield the Playwright page and a live report."""
    executable = require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed (pip install playwright; its browser download is not needed)")
        raise
    report = PageReport()
    profile = tempfile.mkdtemp(prefix="pmtimeline-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=list(CHROMIUM_ARGS),
                viewport={"width": width, "height": height},
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.on("console", lambda msg: report.console_errors.append(msg.text) if msg.type == "error" else None)
                page.on("pageerror", lambda exc: report.page_errors.append(str(exc)))

                def on_dialog(dialog: Any) -> None:
                    report.dialogs.append(f"{dialog.type}: {dialog.message}")
                    dialog.dismiss()

                page.on("dialog", on_dialog)

                def route(r: Any) -> None:
                    if r.request.url.startswith(("file://", "data:", "blob:")):
                        r.continue_()
                    else:
                        report.blocked_requests.append(r.request.url)
                        r.abort()

                page.route("**/*", route)
                page.goto(html_file.resolve().as_uri(), wait_until="load")
                yield page, report
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
