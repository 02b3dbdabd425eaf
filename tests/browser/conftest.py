"""Browser tests of the web phone panel: the product as e2e tests start it, Debian's chromium
driven by playwright, and a stub D365 page hosting the panel through CIF 1.0 or 2.0."""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, Page, Playwright, sync_playwright

from emulators.common.processes import REPO_ROOT, Azurite
from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.entra.authorize import User
from emulators.graph import GraphEmulator
from emulators.panel_demo import panel_redirect_uris
from tests.fixtures.graph import graph_env
from tests.fixtures.product import (
    ANNA,
    BEN,
    PANEL_CLIENT_ID,
    POOLS,
    Product,
    TestAgent,
    run_product,
)
from tests.fixtures.product import wait_for as wait_for

CHROMIUM = Path("/usr/bin/chromium")
STUB_DIR = Path(__file__).parent / "d365_stub"
ARTIFACTS = Path(__file__).parent / "artifacts"
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
SUPERVISOR = TestAgent(
    "sam", "Sam Supervisor", "44444444-4444-4444-8444-444444444444", "", "8:acs:e2e_sam"
)
# Signs in to the tenant but has no role on the phone's API.
OUTSIDER = TestAgent(
    "olli", "Olli Outsider", "55555555-5555-4555-8555-555555555555", "", "8:acs:e2e_olli"
)


def upn(agent: TestAgent) -> str:
    return f"{agent.id}@contoso.local"


# ------------------------------------------------------------------------------ the product


@pytest.fixture(scope="session")
def product(
    local_tls: LocalTLS,
    azurite: Azurite,
    entra: EntraEmulator,
    dataverse: DataverseEmulator,
    graph: GraphEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Product]:
    """The e2e product, with the panel's sign-in registered as `make run` registers it."""
    if not (REPO_ROOT / "panel" / "dist" / "index.html").is_file():
        pytest.fail("the panel is not built: run `make setup` (npm ci + node panel/build.mjs)")
    with run_product(
        tls=local_tls,
        storage=azurite.connection_string,
        entra=entra,
        dataverse=dataverse,
        work=tmp_path_factory.mktemp("product"),
        # A short lease: a tab that lost the phone to another one hears of it within seconds.
        # The Sales pool records its calls, for the recording page.
        extra_env={
            **graph_env(graph),
            "SESSION_LEASE_SECONDS": "15",
            "SERVICE_POOLS": json.dumps([{**POOLS[0], "record": True}, *POOLS[1:]]),
        },
    ) as running:
        entra.sign_in.register_spa(PANEL_CLIENT_ID, panel_redirect_uris(running.host.url))
        for agent in (ANNA, BEN):
            entra.sign_in.add_user(User(agent.oid, upn(agent), agent.name, ("Phone.Agent",)))
        entra.sign_in.add_user(
            User(SUPERVISOR.oid, upn(SUPERVISOR), SUPERVISOR.name, ("Phone.Supervisor",))
        )
        entra.sign_in.add_user(User(OUTSIDER.oid, upn(OUTSIDER), OUTSIDER.name, ()))
        yield running


# ------------------------------------------------------------------------------ the stub D365


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@pytest.fixture(scope="session")
def d365_stub() -> Iterator[str]:
    """The stub D365 org (its page and /webresources/Widget/msdyn_ciLibrary.js) on loopback."""
    handler = functools.partial(_Quiet, directory=str(STUB_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------------------ the browser


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    launched = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--no-sandbox",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    yield launched
    launched.close()


class PanelPage:
    """One agent's browser: the stub D365 page with the panel in its CIF frame."""

    def __init__(self, context: BrowserContext, product: Product, stub_url: str) -> None:
        self.context, self.product, self.stub_url = context, product, stub_url
        self.page: Page = context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    @property
    def panel_url(self) -> str:
        return f"{self.product.host.url}/api/panel/"

    def open(self, cif: int = 1) -> PanelPage:
        self.page.set_viewport_size({"width": 1280, "height": 860})
        self.page.goto(f"{self.stub_url}/index.html?cif={cif}&panel={self.panel_url}")
        return self

    @property
    def frame(self) -> Frame:
        frame = wait_for(
            lambda: next(
                (f for f in self.page.main_frame.child_frames if "/api/panel/" in f.url), None
            ),
            what="the panel's frame",
        )
        return frame

    def sign_in(self, agent: TestAgent) -> PanelPage:
        """Click "Sign in" in the panel; the Entra sign-in page opens as a popup."""
        button = self.frame.get_by_role("button", name="Sign in")
        try:
            button.wait_for(timeout=40_000)
        except Exception:
            self.screenshot("debug-signin", panel_only=False)
            raise AssertionError("no Sign in button; console: " + "\n".join(self.console)) from None
        with self.page.expect_popup(timeout=20_000) as popup_info:
            button.click()
        popup = popup_info.value
        popup.get_by_label("Username").fill(upn(agent))
        popup.get_by_role("button", name="Sign in").click()
        return self

    def wait_ready(self) -> PanelPage:
        try:
            self.frame.locator("#idle").wait_for(state="visible", timeout=30_000)
        except Exception:
            self.screenshot("debug-not-ready")
            raise AssertionError(
                "the phone did not start: "
                + self.frame.locator("main").inner_text()
                + "\nconsole:\n"
                + "\n".join(self.console)
            ) from None
        return self

    def sign_in_here(self, agent: TestAgent) -> PanelPage:
        """A top-level page (no frame) sends the browser to the Entra sign-in page."""
        self.page.get_by_label("Username").fill(upn(agent), timeout=20_000)
        self.page.get_by_role("button", name="Sign in").click()
        return self

    def wait_ready_or_in_call(self) -> PanelPage:
        """After a reload: the phone is back (idle, ringing or already in the call)."""
        shown = "#idle:visible, #ringing:visible, #incall:visible, #wrapup:visible"
        self.frame.locator(shown).first.wait_for(timeout=30_000)
        return self

    def stub_calls(self, method: str | None = None) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.page.evaluate("() => window.stub.calls")
        return [c for c in calls if method is None or c["method"] == method]

    def wait_stub_call(
        self, method: str, check: Callable[[list[Any]], bool] = lambda args: True, what: str = ""
    ) -> dict[str, Any]:
        """The first recorded CIF call of `method` whose arguments pass `check` (polled)."""

        def found() -> dict[str, Any] | None:
            return next((c for c in self.stub_calls(method) if check(c["args"])), None)

        return wait_for(found, what=what or f"the panel to call CIF {method}")

    def set_records(self, records: dict[str, dict[str, str]]) -> None:
        self.page.evaluate("(r) => Object.assign(window.stub.records, r)", records)

    def screenshot(self, name: str, *, panel_only: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        if panel_only:
            self.page.locator("#cif-pane").screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path))
        return path

    def screenshot_path(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        return ARTIFACTS / f"{name}.png"

    def axe_page(self, screen: str) -> None:
        """axe-core on a top-level page (the recording page)."""
        self._axe(self.page.main_frame, screen)

    def axe(self, screen: str) -> None:
        """axe-core (from node_modules) on the panel as it is: no serious or critical finding."""
        self._axe(self.frame, screen)

    def _axe(self, frame: Frame, screen: str) -> None:
        if not frame.evaluate("() => !!window.axe"):
            frame.add_script_tag(content=AXE.read_text())
        result = frame.evaluate(
            "() => axe.run(document, {resultTypes: ['violations']})"
            ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))"
        )
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe on the {screen} screen: {json.dumps(bad, indent=1)}"

    def text(self, selector: str) -> str:
        return self.frame.locator(selector).inner_text()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def agent_browser(
    browser: Browser, world: Product, d365_stub: str, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A factory of agent browsers (each its own profile); all closed after the test. A failed
    test leaves a screenshot of every page and its console in the artifacts."""
    contexts: list[BrowserContext] = []
    pages: list[PanelPage] = []

    def new(*, context: BrowserContext | None = None) -> PanelPage:
        if context is None:
            context = browser.new_context(ignore_https_errors=True)
            contexts.append(context)
        page = PanelPage(context, world, d365_stub)
        pages.append(page)
        return page

    yield new
    if request.node.stash.get(FAILED, False):
        for i, page in enumerate(pages):
            name = f"failed-{request.node.name}-{i}"
            page.screenshot(name, panel_only=False)
            (ARTIFACTS / f"{name}.console.txt").write_text("\n".join(page.console))
    for context in contexts:
        context.close()


def panel_text_matches(frame: Frame, selector: str, pattern: str) -> bool:
    return re.search(pattern, frame.locator(selector).inner_text() or "") is not None
