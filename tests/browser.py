"""Headless Chromium (Debian's) started by pid, driven over CDP by Playwright."""

import os
import shutil
import signal
import subprocess
import time

CHROMIUM_FLAGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
]


def find_chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """One headless Chromium process with a fresh profile, stopped by its pid."""

    def __init__(self, profile_dir):
        self.profile_dir = str(profile_dir)
        self.proc = None
        self.playwright = None
        self.browser = None

    def start(self):
        from playwright.sync_api import sync_playwright

        executable = find_chromium()
        port_file = os.path.join(self.profile_dir, 'DevToolsActivePort')
        self.proc = subprocess.Popen(
            [
                executable,
                *CHROMIUM_FLAGS,
                '--remote-debugging-port=0',
                '--remote-debugging-address=127.0.0.1',
                f'--user-data-dir={self.profile_dir}',
                'about:blank',
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or not read_text(port_file).strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('chromium did not start')
            time.sleep(0.05)
        port = int(read_text(port_file).split()[0])
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.connect_over_cdp(f'http://127.0.0.1:{port}')
        return self

    def new_page(self):
        context = self.browser.contexts[0] if self.browser.contexts else self.browser.new_context()
        return context.new_page()

    def stop(self):
        try:
            if self.browser is not None:
                self.browser.close()
            if self.playwright is not None:
                self.playwright.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)


def read_text(path):
    """The text of a file, closed again."""
    with open(path) as f:
        return f.read()
