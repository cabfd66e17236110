"""Small HTTP servers for the JavaScript client's cross-origin tests
(tests/test_client_hostile.py).

Each ``Site`` runs in the test's own process, on 127.0.0.1 and a port from
the OS (two sites are two origins), records every request it gets, and
answers everyone with permissive CORS headers: a hostile server would, and
it lets a browser actually send what the client puts in a cross-origin
request.  It serves the client's static files, the HTML pages it is given,
and a JSON answer for anything else.
"""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATIC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'pyramid_immortus', 'static'
)
STATIC_FILES = ('immortus.js', 'immortus.mjs')


def page(site, head='', body=''):
    """An HTML page with the CSRF meta tag and the classic script (by an
    absolute URL, so that a ``<base>`` in ``head`` does not move it)."""
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        + head
        + '<meta name="csrf-token" content="page-token">'
        + f'<script src="{site.url}/static/immortus.js"></script></head>'
        + f'<body>{body}<p id="ready">ready</p></body></html>'
    )


class Site:
    def __init__(self):
        self.pages = {}  # path -> HTML
        self.requests = []  # {'method', 'path', 'headers' (lower-case names)}
        self.server = None
        self.thread = None

    @property
    def url(self):
        return f'http://127.0.0.1:{self.server.server_address[1]}'

    def posts(self, prefix=''):
        return [r for r in self.requests if r['method'] == 'POST' and r['path'].startswith(prefix)]

    def start(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body=b'', content_type=None, extra=()):
                self.send_response(status)
                self.send_header('Access-Control-Allow-Origin', '*')
                for name, value in extra:
                    self.send_header(name, value)
                if content_type:
                    self.send_header('Content-Type', content_type)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_any(self):
                length = int(self.headers.get('Content-Length') or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split('?')[0]
                headers = {name.lower(): value for name, value in self.headers.items()}
                site.requests.append({'method': self.command, 'path': path, 'headers': headers})
                if self.command == 'OPTIONS':
                    asked = headers.get('access-control-request-headers', '')
                    self.answer(
                        204,
                        extra=[
                            ('Access-Control-Allow-Methods', 'GET, POST, PUT'),
                            ('Access-Control-Allow-Headers', asked),
                        ],
                    )
                elif self.command == 'GET' and path in site.pages:
                    self.answer(200, site.pages[path].encode(), 'text/html; charset=utf-8')
                elif self.command == 'GET' and path.startswith('/static/'):
                    name = path[len('/static/') :]
                    if name not in STATIC_FILES:
                        self.answer(404, b'{}', 'application/json')
                        return
                    with open(os.path.join(STATIC, name), 'rb') as f:
                        self.answer(200, f.read(), 'text/javascript; charset=utf-8')
                else:
                    if path.endswith('/cancel'):
                        data = {'job_id': 'j1', 'cancelled': True}
                    else:
                        data = {'job_id': 'j1', 'job_class': 'Add'}
                    data['csrf'] = headers.get('x-csrf-token')
                    self.answer(200, json.dumps(data).encode(), 'application/json')

            do_GET = do_POST = do_PUT = do_OPTIONS = handle_any

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
