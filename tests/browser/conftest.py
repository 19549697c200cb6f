"""Browser tests: Playwright driving Debian's chromium (installed by
``scripts/setup/install-chromium.sh``, run by ``make test``) against a served demo stack.

Screenshots go to ``$LIVEPROOF_TEST_OUTPUT/screenshots`` (default ``test-output/``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from scripts.bench.harness import Stack, running_stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
#: The flags this machine needs: no sandbox as root, no GPU, and no calls to Google's hosts,
#: which the closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}
RECEIPT = re.compile(r"/v1/receipts/(lp1[a-z2-7]+)\s+\(([^)]*)\)")
PRODUCT = re.compile(r"^\s+product\s+(\d{14})\s", re.MULTILINE)


def output_dir() -> Path:
    """Where screenshots are written (created on first use)."""
    base = Path(os.environ.get("LIVEPROOF_TEST_OUTPUT", ROOT / "test-output"))
    path = base / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} missing: run scripts/setup/install-chromium.sh (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass(frozen=True)
class Demo:
    """A served stack with the demo's data, and what the demo printed."""

    stack: Stack
    output: str

    @property
    def base(self) -> str:
        """The API's base URL."""
        return self.stack.base_url

    def receipt(self, note: str) -> str:
        """The code of the printed receipt whose note contains ``note``."""
        for code, printed in RECEIPT.findall(self.output):
            if note in printed:
                return code
        raise AssertionError(f"the demo printed no receipt noted {note!r}:\n{self.output}")

    @property
    def products(self) -> list[str]:
        """The GTINs the demo registered, in order."""
        return PRODUCT.findall(self.output)


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    """anvil, contracts, ``liveproof serve`` and ``liveproof demo`` (60 orders)."""
    with running_stack(workers=1, batch_interval=0.5) as stack:
        env = stack.cli_env()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "scripts.cli",
                "demo",
                "--api",
                stack.base_url,
                "--orders",
                "60",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        yield Demo(stack, result.stdout)


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    """A 390 px wide phone-sized context in English."""
    context = browser.new_context(viewport=PHONE, locale="en-US")
    yield context
    context.close()


def open_in(browser: Browser, url: str, language: str) -> tuple[BrowserContext, Page]:
    """A phone-sized page whose browser prefers ``language``, opened at ``url``."""
    context = browser.new_context(
        viewport=PHONE, locale=language, extra_http_headers={"Accept-Language": language}
    )
    page = context.new_page()
    response = page.goto(url)
    assert response is not None
    assert response.status == 200, url
    return context, page


def fits(page: Page) -> bool:
    """True when nothing on the page is wider than its viewport (no sideways scrolling)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None
    return int(width) <= viewport["width"]


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot under the test output directory."""
    path = output_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
