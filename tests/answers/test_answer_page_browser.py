"""The answer page in a real browser (issue 15): headless Chromium from the system (Debian's
`chromium` and `chromium-driver`, never a downloaded browser), driven by Selenium, against the
app served by uvicorn on loopback. A citizen on a phone-sized screen types the reference and the
query code into the form and reads the answer. `.ci/run` installs Chromium where it is missing;
with CI set a missing Chromium fails the run, otherwise this test is skipped and says why."""

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app import db
from app.inquiries.models import Inquiry
from app.main import create_app
from app.replies.models import Reply, ReplyPurpose
from app.routing import service as routing
from tests import factories
from tests.inquiries.test_work import _city

pytestmark = pytest.mark.committing
ANSWER = "您好，断缴3个月内可携带身份证到市民中心3号窗口补缴，咨询电话0551-12333。"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def _browser_or_skip() -> tuple[str, str]:
    if CHROMIUM and CHROMEDRIVER:
        return CHROMIUM, CHROMEDRIVER
    missing = "Chromium is absent (no chromium and chromedriver on PATH)"
    if os.environ.get("CI"):
        pytest.fail(f"{missing}: CI must run the answer page in a browser; .ci/run installs it")
    pytest.skip(
        f"{missing}: the answer page's browser test needs Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver; .ci/run does it)"
    )


@contextmanager
def _served(maker: async_sessionmaker[AsyncSession]) -> Iterator[str]:
    """The app on a free loopback port, its own engine on the test's database (the server
    runs its own event loop in a thread)."""
    engine = create_async_engine(maker.kw["bind"].url, poolclass=NullPool)
    app = create_app()
    app.dependency_overrides[db.maker] = lambda: async_sessionmaker(engine, expire_on_commit=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@contextmanager
def _phone(chromium: str, driver: str) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=390,844")  # a phone's screen
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield browser
    finally:
        browser.quit()


async def test_a_citizen_reads_the_answer_on_a_phone_in_chromium(
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    chromium, driver = _browser_or_skip()
    async with committing_maker.begin() as session:
        office, _, _ = await _city(session)
        account = await factories.account(session, office)
        inquiry = await factories.inquiry(session, account)  # through intake: it has a code
        assert await routing.route(
            session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[]
        )
        session.add(
            Reply(
                inquiry_id=inquiry.id,
                text=ANSWER,
                purpose=ReplyPurpose.answer,
                priority=5,
                author="person:1 王芳 (hefei-hrss)",
            )
        )
    async with committing_maker() as session:
        reference, code = (
            await session.execute(
                select(Inquiry.reference, Inquiry.query_code).where(Inquiry.id == inquiry.id)
            )
        ).one()
    with _served(committing_maker) as base, _phone(chromium, driver) as browser:
        browser.get(f"{base}/answer")
        browser.find_element(By.ID, "ref").send_keys(reference)
        browser.find_element(By.ID, "code").send_keys(code)
        browser.find_element(By.ID, "look").click()
        # The click starts a navigation: wait for the answer page (under load it takes a while).
        shown = WebDriverWait(browser, 30).until(
            expected_conditions.presence_of_element_located((By.ID, "reference"))
        )
        assert shown.text == reference
        assert browser.find_element(By.ID, "department").text == "部门 hefei-hrss"
        assert ANSWER in browser.find_element(By.ID, "replies").text
        # Laid out for the phone: nothing wider than its screen.
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        # A wrong code: the form again, with a notice that names neither what was wrong.
        browser.get(f"{base}/answer?ref={reference}&code=0000000000")
        assert "查询码不正确" in browser.find_element(By.ID, "notice").text
        assert browser.find_elements(By.ID, "replies") == []
