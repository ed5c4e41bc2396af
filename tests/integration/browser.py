"""A headless Chromium driven over the DevTools protocol, for the admin page's test.

Debian's chromium runs with --headless --no-sandbox --disable-gpu
--disable-background-networking, its own profile directory and a free DevTools
port; it is killed with its whole process group by PID when closed, whatever
happened. Waiting is bounded polling, never a fixed sleep.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request

import websocket  # Debian's python3-websocket

from sidecar_cluster import free_ports, wait_for

CHROMIUM = shutil.which("chromium")


class BrowserError(AssertionError):
    pass


class Browser:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="cluster-balance-chromium-")
        self.port = free_ports(1)[0]
        self.events = []
        self._next_id = 0
        self.log_path = os.path.join(self.dir, "chromium.log")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--no-first-run",
                 "--disable-dev-shm-usage", f"--remote-debugging-port={self.port}",
                 f"--user-data-dir={os.path.join(self.dir, 'profile')}",
                 "--window-size=1280,900", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own group: the renderers die with it
        try:
            page = wait_for(self._page_target, 60, "chromium's DevTools endpoint")
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30,
                                                  suppress_origin=True)
        except BaseException:
            self.close()
            raise
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _page_target(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as r:
            targets = json.load(r)
        return next((t for t in targets if t.get("type") == "page"), None)

    def close(self):
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                ws.close()
            except OSError:
                pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the protocol
    def call(self, method, **params):
        self._next_id += 1
        ident = self._next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url):
        self.call("Page.navigate", url=url)

    def wait_until(self, expression, timeout, what):
        """Polls a JavaScript expression until it is truthy; returns its value. An
        exception in the page (a row being rebuilt) counts as not yet."""
        def value():
            try:
                return self.evaluate(expression)
            except BrowserError as error:
                raise ValueError(str(error)) from None  # wait_for polls on
        return wait_for(value, timeout, what, interval=0.05)

    def set_viewport(self, width, height, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=mobile)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def problems(self):
        """Script exceptions, and console or log errors (a CSP violation is one)."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(" ".join(str(a.get("value", a.get("description")))
                                      for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found
