"""The dashboard in headless Chromium against the built binary on the demo config.

Run by .ci/run after `cargo build`: TOLLGATE_BIN names the binary, CHROMIUM the
browser (Debian's /usr/bin/chromium; never a downloaded build). The gateway runs with
an admin key, so the page must ask for it; traffic is sent through the mock providers,
and the charts must hold the ledger's numbers. The page may not log a console error
or request anything from another origin. A screenshot is saved to target/dashboard.png.
"""

import os
import sqlite3
import subprocess
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from conftest import start_tollgate
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
KEY = "tg-demo-key"
ADMIN_KEY = "tg-admin-test-key"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# model -> requests sent; the demo's four providers in three jurisdictions.
TRAFFIC = {"o1": 3, "deepseek-r1-azure": 4, "deepseek-flash": 2, "deepseek-r1-github": 1}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    ledger = tmp_path_factory.mktemp("ledger") / "dashboard.db"
    proc, base, admin = start_tollgate(
        ledger,
        TOLLGATE__ADMIN__API_KEY="env:TG_DASHBOARD_ADMIN_KEY",
        TG_DASHBOARD_ADMIN_KEY=ADMIN_KEY,
        TOLLGATE__MOCK__LATENCY="5ms",
        TOLLGATE__MOCK__CHUNK_INTERVAL="1ms",
    )
    with httpx.Client(timeout=30) as c:
        for model, n in TRAFFIC.items():
            for i in range(n):
                r = c.post(
                    base + "/v1/chat/completions",
                    headers={"authorization": f"Bearer {KEY}"},
                    json={"model": model, "messages": [{"role": "user", "content": f"Question {i}?"}]},
                )
                assert r.status_code == 200, r.text
    yield {"admin": admin, "ledger": ledger}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def ledger_sums(path: Path):
    conn = sqlite3.connect(path)
    cost, requests, total = defaultdict(Decimal), defaultdict(int), Decimal(0)
    for provider, jurisdiction, c in conn.execute("SELECT provider, jurisdiction, cost_usd FROM requests"):
        requests[jurisdiction] += 1
        if c is not None:
            cost[provider] += Decimal(c)
            total += Decimal(c)
    conn.close()
    return cost, requests, total


def test_admin_api_refuses_app_key_and_no_key(gateway):
    for headers in ({}, {"authorization": f"Bearer {KEY}"}):
        r = httpx.get(gateway["admin"] + "/admin/usage", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"


def test_dashboard_draws_the_ledger(gateway):
    # The usage API flushes the ledger before answering; after it the file is complete.
    r = httpx.get(gateway["admin"] + "/admin/usage", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200
    assert r.json()["totals"]["requests"] == sum(TRAFFIC.values())
    cost, requests, total = ledger_sums(gateway["ledger"])
    assert len(requests) == 3 and total > 0

    errors, outside = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(gateway["admin"]) or r.url.startswith("data:") else outside.append(r.url))
        page.goto(gateway["admin"] + "/dashboard")
        # The first API call answers 401: the page asks for the key once.
        page.wait_for_selector("#login[open]")
        errors.clear()  # the browser logs the expected 401 itself
        page.fill("#login-key", ADMIN_KEY)
        page.click("#login button[type=submit]")
        page.wait_for_selector("body[data-loaded=true]", timeout=15000)

        drawn = defaultdict(Decimal)
        for rect in page.query_selector_all("#spend-provider rect[data-series]"):
            drawn[rect.get_attribute("data-series")] += Decimal(rect.get_attribute("data-value"))
        assert dict(drawn) == {k: v for k, v in cost.items() if v > 0}

        shares = {
            r.get_attribute("data-series"): int(r.get_attribute("data-value"))
            for r in page.query_selector_all('#share-jurisdiction rect[data-measure="requests"]')
        }
        assert shares == dict(requests)

        spend = page.get_attribute('[data-tile="spend"]', "data-value")
        assert Decimal(spend) == total
        assert page.get_attribute('[data-tile="requests"]', "data-value") == str(sum(TRAFFIC.values()))
        assert page.query_selector_all("#latency rect[data-series]"), "latency percentiles drawn"
        assert page.query_selector_all("#top-keys rect[data-series=demo]")

        shot = ROOT / "target/dashboard.png"
        shot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        browser.close()

    assert errors == [], errors
    assert outside == [], outside
