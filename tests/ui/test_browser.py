"""A real-browser check: ``streamlit run ui/app.py`` on loopback, headless Chromium asks a question via ``?q=``.

Chromium is driven through its DevTools protocol (``--remote-debugging-port``) rather than
``--screenshot``/``--dump-dom`` with ``--virtual-time-budget``: virtual time fast-forwards while the page
only waits on Streamlit's websocket, so those one-shot modes capture the page before the answer arrives.
Here the test waits in real time until the answer is rendered, then saves the screenshot and the DOM to
``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from uitest import APP, REPO, TEST_ENV

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"
QUESTION = "How many bottles of water were delivered?"
ERROR_SELECTOR = '[data-testid="stException"], [data-testid="stAlertContentError"]'
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000", "--remote-debugging-address=127.0.0.1",
                  "--remote-debugging-port=0"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (apt-get install -y chromium; "
                                                "CI installs it with DOCRAG_WITH_BROWSER=1)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def app_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCRAG_") or k == "DOCRAG_DATA"}
    return {**env, **TEST_ENV, "DOCRAG_HOME": str(home), "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1",
            "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, docs_dir: Path) -> Iterator[str]:
    """The app served on 127.0.0.1 over a home holding fake-memo.pdf (ingested by a separate process)."""
    tmp = tmp_path_factory.mktemp("browser")
    env = app_environment(tmp / "home")
    ingest = "import sys; from rag import DocRAG; sys.exit(1 if DocRAG().ingest(sys.argv[1:]).failed else 0)"
    subprocess.run([sys.executable, "-c", ingest, str(docs_dir / "fake-memo.pdf")],
                   env=env, cwd=REPO, check=True, timeout=300, capture_output=True)
    port = free_port()
    log = open(tmp / "streamlit.log", "wb")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {(tmp / 'streamlit.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 90, "the app's health check")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class Tab:
    """One page of a headless Chromium, driven over the DevTools protocol (websockets' sync client)."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


class Chromium(Tab):
    """Headless Chromium: its first page, and more tabs of the same browser with :meth:`open_tab`."""

    def __init__(self, user_data_dir: Path) -> None:
        self.proc = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = user_data_dir / "DevToolsActivePort"
        self.port = wait_for(lambda: port_file.is_file() and port_file.read_text().split("\n")[0].strip(), 60,
                             "chromium's DevTools port")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        super().__init__(page["webSocketDebuggerUrl"])

    def open_tab(self, url: str) -> Tab:
        """A second tab of this browser (its own Streamlit session), at ``url``."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?{urllib.parse.quote(url, safe='')}",
                                     method="PUT")
        with urllib.request.urlopen(req, timeout=10) as r:
            return Tab(json.load(r)["webSocketDebuggerUrl"])

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:  # noqa: BLE001, S110 - the browser may already be gone
            pass
        self.ws.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def test_chat_page_answers_a_question_from_the_url(app_url: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser = Chromium(tmp_path / "chromium")
    try:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=f"{app_url}/?q={urllib.parse.quote(QUESTION)}")
        done = (f"document.querySelectorAll('{ERROR_SELECTOR}').length > 0 || "
                "document.body.innerText.includes('Answered in')")
        wait_for(lambda: browser.js(done), 240, "the answer (or an error) on the chat page", interval=1)
        time.sleep(1.5)  # let the last deltas paint
        shot = ARTIFACTS / "ui-chat.png"
        shot.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))
        dom = browser.js("document.documentElement.outerHTML")
        (ARTIFACTS / "ui-chat.html").write_text(dom, encoding="utf-8")
        messages = browser.js("[...document.querySelectorAll('[data-testid=\"stChatMessage\"]')]"
                              ".map(m => m.innerText)")
        # open the first citation or, when the model cited nothing, the first passage read (in an expander)
        in_answer = "[...document.querySelectorAll('[data-testid=\"stChatMessage\"] button')]"
        if not browser.js(f"{in_answer}.some(x => x.innerText.trim().startsWith('['))"):
            browser.js("document.querySelector('[data-testid=\"stChatMessage\"] details summary')?.click()")
            time.sleep(1)
        browser.js(f"{in_answer}.filter(x => x.innerText.trim().startsWith('[') "
                   "|| x.innerText.includes('fake-memo.pdf')).slice(0, 1).forEach(x => x.click())")
        wait_for(lambda: browser.js("document.body.innerText.includes('Cited passage')"), 60, "the cited passage")
        time.sleep(1.5)
        cited = ARTIFACTS / "ui-chat-cited.png"
        cited.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))
        chunk = browser.js("document.querySelector('.docrag-chunk')?.innerText || ''")
        errors_after_click = browser.js(f"document.querySelectorAll('{ERROR_SELECTOR}').length")
    finally:
        browser.close()

    assert "stException" not in dom and "stAlertContentError" not in dom, "the page shows an error"
    assert shot.stat().st_size > 10_000
    assert len(messages) == 2, messages
    assert QUESTION in messages[0]
    answer = messages[1]
    assert "Answered in" in answer
    body = answer.split("Answered in")[0].replace("Citations", "").strip()
    assert len(body) > 20 and "empty answer" not in body, f"no answer text in {answer!r}"
    assert errors_after_click == 0
    assert "water" in chunk.lower(), chunk  # the memo's chunk, opened from the answer


# --- the app as people use it: /chat, a conversation, the citation panel in view, reload, two tabs -------------
# the first is the question the README's screenshot once answered "May 5, 2023" (a passage answer now)
QUESTIONS = ["What does the memo say about bottles of water?", "How many trucks were used?",
             "How many laptops were delivered?"]
SHOTS = REPO / "docs"  # UPDATE_SCREENSHOTS=1 copies the screenshots here (the README shows them)


def shoot(browser: Tab, name: str) -> Path:
    out = ARTIFACTS / name
    out.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" and name.startswith("screenshot-"):  # the README's, not the rest
        shutil.copy(out, SHOTS / name)
    return out


def answers(browser: Tab) -> int:
    """Finished answers: the app is idle (no Stop button, no running indicator) and the last message is done."""
    return browser.js(
        "(() => { if (document.querySelector('.st-key-stop_answer, [data-testid=\"stStatusWidget\"]')) return 0;"
        " const ms = [...document.querySelectorAll('[data-testid=\"stChatMessage\"]')];"
        " const last = ms[ms.length - 1];"
        " return last && /Answered in|Not in the documents/.test(last.innerText) ? Math.floor(ms.length / 2) : 0; })()"
    ) or 0


def type_question(browser: Tab, text: str) -> None:
    browser.js("document.querySelector('[data-testid=\"stChatInputTextArea\"]').focus()")
    browser.call("Input.insertText", text=text)
    time.sleep(0.3)
    browser.call("Input.dispatchKeyEvent", type="keyDown", key="Enter", code="Enter", windowsVirtualKeyCode=13)
    browser.call("Input.dispatchKeyEvent", type="keyUp", key="Enter", code="Enter", windowsVirtualKeyCode=13)


def test_conversation_citation_panel_reload_and_two_tabs(app_url: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser = Chromium(tmp_path / "chromium")
    other = None
    try:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=f"{app_url}/chat?q={urllib.parse.quote(QUESTIONS[0])}")  # /chat directly
        wait_for(lambda: answers(browser) >= 1 or browser.js(f"document.querySelectorAll('{ERROR_SELECTOR}').length"),
                 240, "the first answer", interval=1)
        assert "Page not found" not in browser.js("document.body.innerText")
        assert not browser.js("!!document.querySelector('[data-testid=\"stAppDeployButton\"]')"
                              " && document.querySelector('[data-testid=\"stAppDeployButton\"]').offsetParent")
        time.sleep(1.5)
        first = browser.js("[...document.querySelectorAll('[data-testid=\"stChatMessage\"]')][1].innerText")
        assert "There were 20,000 bottles of water" in first and "Not in the documents" not in first, first
        shoot(browser, "screenshot-chat.png")  # the first answer, with its cited span (the README shows it)
        for n, q in enumerate(QUESTIONS[1:], start=2):
            type_question(browser, q)
            try:
                wait_for(lambda n=n: answers(browser) >= n, 420, f"answer {n}", interval=1)
            except TimeoutError:
                shoot(browser, f"ui-timeout-{n}.png")
                raise
        # the third answer's first citation (or passage): the panel must be in the viewport
        third = "[...document.querySelectorAll('[data-testid=\"stChatMessage\"]')].filter((m, i) => i % 2 == 1)[2]"
        if not browser.js(f"[...{third}.querySelectorAll('button')].some(b => b.innerText.trim().startsWith('['))"):
            browser.js(f"{third}.querySelector('details summary')?.click()")
            time.sleep(1)
        browser.js(f"[...{third}.querySelectorAll('button')].filter(b => b.innerText.trim().startsWith('[') || "
                   "b.innerText.includes('fake-memo.pdf'))[0].scrollIntoView()")
        browser.js(f"[...{third}.querySelectorAll('button')].filter(b => b.innerText.trim().startsWith('[') || "
                   "b.innerText.includes('fake-memo.pdf'))[0].click()")
        wait_for(lambda: browser.js("!!document.querySelector('.st-key-passage_panel img.docrag-page')"), 60,
                 "the cited passage with its page")
        time.sleep(1.5)
        rect = browser.js("(() => { const r = document.querySelector('.st-key-passage_panel .docrag-chunk')"
                          ".getBoundingClientRect(); return [r.top, r.bottom, window.innerHeight]; })()")
        shoot(browser, "screenshot-citation-page.png")
        # reload: the conversation is back (its id is in the URL)
        browser.js("window.__docrag_before_reload = true")  # Page.reload returns before the old page is gone
        browser.call("Page.reload")

        def reloaded() -> str:
            try:
                if browser.js("window.__docrag_before_reload === true") or answers(browser) < 3:
                    return ""
                return browser.js("document.body.innerText")
            except RuntimeError as e:  # asked while the reload swaps the page: not back yet, ask again
                if "navigated or closed" in str(e):
                    return ""
                raise

        after_reload = wait_for(lambda: (text := reloaded()) and all(q in text for q in QUESTIONS) and text, 120,
                                "the conversation after a reload", interval=1)
        # per-tab settings: temperature moved in this tab stays at its default in a second tab, and stays here
        slider = "document.querySelector('.st-key-temperature input[type=\"range\"]')"  # react-aria's input
        browser.js(f"{slider}.focus()")
        for _ in range(4):  # four steps of 0.05
            browser.call("Input.dispatchKeyEvent", type="keyDown", key="ArrowRight", code="ArrowRight",
                         windowsVirtualKeyCode=39)
            browser.call("Input.dispatchKeyEvent", type="keyUp", key="ArrowRight", code="ArrowRight",
                         windowsVirtualKeyCode=39)
            time.sleep(0.3)
        value = f"parseFloat({slider}?.value)"
        moved = wait_for(lambda: (v := browser.js(value)) and abs(v - 0.2) < 1e-6 and v, 30,
                         "the temperature slider at 0.2 in the first tab")
        other = browser.open_tab(f"{app_url}/chat")
        # NaN (no slider yet) has no JSON value: Runtime.evaluate gives None for it
        other_value = wait_for(lambda: (v := other.js(value)) is not None and [v], 120,
                               "the temperature slider in the second tab", interval=1)[0]
        time.sleep(2)  # both sessions have rerun: the first tab still has its own value
        here_value = browser.js(value)
        # the Analysis page
        browser.call("Page.navigate", url=f"{app_url}/analysis")
        wait_for(lambda: browser.js("document.querySelectorAll('canvas, svg.marks').length >= 2"), 120,
                 "the analysis charts")
        time.sleep(2)
        shoot(browser, "screenshot-analysis.png")
        errors = browser.js(f"document.querySelectorAll('{ERROR_SELECTOR}').length")
    finally:
        browser.close()
        if other is not None:
            other.ws.close()

    top, bottom, height = rect
    assert 0 <= top < height and bottom > top, f"the cited passage is off-screen: {rect}"
    assert all(q in after_reload for q in QUESTIONS), after_reload[:3000]
    assert other_value == 0 and abs(moved - 0.2) < 1e-6 and abs(here_value - 0.2) < 1e-6, \
        f"temperature leaked across tabs: {(moved, other_value, here_value)}"
    assert errors == 0


# --- upload in the browser, a follow-up that leans on the chat, stopping an answer ------------------------------
def test_upload_follow_up_and_stop(app_url: str, tmp_path: Path, docs_dir: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nthis is no PDF body\n")
    uploader = '[data-testid="stFileUploaderDropzoneInput"]'
    browser = Chromium(tmp_path / "chromium")
    try:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=f"{app_url}/add")
        wait_for(lambda: browser.js(f"!!document.querySelector('{uploader}')"), 120, "the uploader")
        root = browser.call("DOM.getDocument")["root"]["nodeId"]
        node = browser.call("DOM.querySelector", nodeId=root, selector=uploader)["nodeId"]
        browser.call("DOM.setFileInputFiles", nodeId=node,
                     files=[str(docs_dir / "handbook-1p.docx"), str(docs_dir / "stanley-cups.csv"), str(broken)])
        button = "document.querySelector('.st-key-ingest_uploads button')"
        wait_for(lambda: browser.js(f"!!{button} && !{button}.disabled"), 60, "the ingest button for three files")
        browser.js(f"{button}.click()")
        ingested = wait_for(lambda: (t := browser.js("document.body.innerText")) and "2 ingested" in t and t, 300,
                            "the ingest result", interval=1)
        shoot(browser, "ui-upload.png")

        browser.call("Page.navigate", url=f"{app_url}/chat")
        wait_for(lambda: browser.js("!!document.querySelector('[data-testid=\"stChatInputTextArea\"]')"), 120,
                 "the chat input")
        time.sleep(1)
        base = answers(browser)

        def ask(question: str, n: int) -> str:
            type_question(browser, question)
            wait_for(lambda: answers(browser) >= base + n, 420, f"the answer to {question!r}", interval=1)
            return browser.js("[...document.querySelectorAll('[data-testid=\"stChatMessage\"]')].at(-1).innerText")

        handbook = ask("Who appoints and supervises standing trustees?", 1)  # from the uploaded DOCX
        ask("How many bottles of water were delivered?", 2)
        follow_up = ask("When were they delivered?", 3)  # leans on the question before
        # stop an answer: Stop the moment it shows (a DOM observer clicks it; the answer reads the 20 passages
        # of this tab's top-k, about a second on 2 cores), then the chat goes on
        browser.js("document.querySelector('.st-key-top_k input[type=\"range\"]').focus()")
        for kind in ("keyDown", "keyUp"):
            browser.call("Input.dispatchKeyEvent", type=kind, key="End", code="End", windowsVirtualKeyCode=35)
        wait_for(lambda: browser.js("document.querySelector('.st-key-top_k input[type=\"range\"]').value") == "20",
                 30, "top-k at 20")
        time.sleep(1)
        browser.js("new MutationObserver((_, obs) => { const b = document.querySelector('.st-key-stop_answer button');"
                   " if (b) { b.click(); obs.disconnect(); } }).observe(document.body, {childList: true, subtree: true})")
        type_question(browser, "How many trucks were used?")
        try:
            stopped = wait_for(lambda: browser.js("document.body.innerText.includes('Stopped before the answer was "
                                                  "finished')"), 60, "the stopped answer")
        except TimeoutError:
            shoot(browser, "ui-stop-timeout.png")
            print(browser.js("[...document.querySelectorAll('[data-testid=\"stChatMessage\"]')].slice(-3)"
                             ".map(m => m.innerText).join('\\n----\\n')"))
            raise
        after_stop = ask("How many laptops were delivered?", 5)
        shoot(browser, "ui-follow-up-stop.png")
    finally:
        browser.close()

    assert all(name in ingested for name in ("handbook-1p.docx", "stanley-cups.csv", "broken.pdf")), ingested[:2000]
    assert "1 failed" in ingested or "1 refused" in ingested, ingested[:2000]
    assert "United States Trustee" in handbook and "handbook-1p.docx" in handbook, handbook
    assert "Searched for" in follow_up and "January 23" in follow_up, follow_up
    assert stopped
    assert "200" in after_stop, after_stop
