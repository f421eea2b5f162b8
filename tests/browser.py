"""What the browser tests share: Debian's Chromium driven by Playwright, where their screenshots go,
and a way to ask the database from inside Playwright's event loop."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.db import connection

T = TypeVar("T")
CHROMIUM = Path(os.getenv("CHROMIUM_PATH", "/usr/bin/chromium"))
CONSOLE_SCREENSHOTS = Path(os.getenv("CONSOLE_SCREENSHOTS", Path(__file__).resolve().parents[1] / "docs" / "console"))
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}"),
]


def launch_chromium(playwright: Any) -> Any:
    """Headless Chromium without a sandbox, background networking or component updates."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
    )


def in_own_thread(query: Callable[[], T]) -> T:
    """Ask the database from a thread of its own: Playwright's sync API runs an event loop here, where
    Django refuses database calls. The thread's connection is closed before it ends."""

    def run() -> T:
        try:
            return query()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()
