"""The events gateway: Server-Sent Events of jobs, from an asyncio server.

``GET {immortus.events_path}?ids=ID1,ID2,...[&job_class=Name]``: the
stream first answers, per id, what the application's batch verify answers
for it (the batch verify itself runs, in a thread, on a request carrying
the stream request's own cookies and headers: authorization is exactly
its), then one event per change of a followed job, then ``event: end``
once every followed job has ended or answered a non-200 code.
"""

import argparse
import asyncio
import json
import logging
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

from pyramid.request import Request

from ..settings import get_settings
from ..views import MAX_JOB_ID_LENGTH, valid_job_id
from .hub import Hub, Stream, Unavailable, has_ended, job_event

log = logging.getLogger(__name__)

#: Request headers not passed on to the batch verify.
SKIPPED_HEADERS = frozenset(
    (
        b'host',
        b'accept',
        b'accept-encoding',
        b'connection',
        b'content-length',
        b'transfer-encoding',
        b'upgrade',
        b'keep-alive',
        b'te',
    )
)
END_EVENT = b'event: end\ndata: {}\n\n'
PING = b': keepalive\n\n'


class EventsApp:
    """The ASGI application of the gateway for the Pyramid application
    ``wsgi_app`` (whose batch verify authorizes each stream) and its
    ``registry``."""

    def __init__(self, wsgi_app, registry, read_threads=4, verify_threads=8):
        self.wsgi_app = wsgi_app
        self.registry = registry
        settings = get_settings(registry)
        self.settings = settings
        self.events_path = settings.events_path
        self.verify_path = settings.verify_path
        self.allow_origins = frozenset(settings.events_allow_origins)
        self.batch_max = settings.batch_max
        self.verify_threads = verify_threads
        self.hub = Hub(
            registry,
            settings.redis_url,
            settings.progress_interval,
            settings.events_keepalive,
            read_threads,
        )
        self._verify_pool = None
        #: called once the gateway serves (the console script prints its address)
        self.on_ready = None

    async def __call__(self, scope, receive, send):
        if scope['type'] == 'lifespan':
            return await self.lifespan(receive, send)
        if scope['type'] != 'http':
            return
        headers = scope['headers']
        cors = self.cors_headers(headers)
        if scope['path'] != self.events_path:
            return await self.json(send, 404, {'error': 'not found'}, cors)
        if scope['method'] == 'OPTIONS':
            extra = []
            if cors:
                extra = [
                    (b'access-control-allow-methods', b'GET'),
                    (b'access-control-allow-headers', b'Last-Event-ID, Cache-Control, Accept'),
                    (b'access-control-max-age', b'600'),
                ]
            await send({'type': 'http.response.start', 'status': 204, 'headers': cors + extra})
            return await send({'type': 'http.response.body', 'body': b''})
        if scope['method'] != 'GET':
            return await self.json(
                send, 405, {'error': 'method not allowed'}, cors + [(b'allow', b'GET, OPTIONS')]
            )
        await self.stream(scope, receive, send, cors)

    # -- HTTP helpers -----------------------------------------------------

    def cors_headers(self, headers):
        """CORS headers for an ``Origin`` that ``immortus.events.allow_origins``
        lists (with credentials), none for any other."""
        if not self.allow_origins:
            return []
        origin = None
        for name, value in headers:
            if name == b'origin':
                origin = value.decode('latin-1')
        if origin is None or origin not in self.allow_origins:
            return [(b'vary', b'Origin')]
        return [
            (b'access-control-allow-origin', origin.encode('latin-1')),
            (b'access-control-allow-credentials', b'true'),
            (b'vary', b'Origin'),
        ]

    async def json(self, send, status, data, extra=()):
        body = json.dumps(data).encode()
        await send(
            {
                'type': 'http.response.start',
                'status': status,
                'headers': [
                    (b'content-type', b'application/json'),
                    (b'cache-control', b'no-store'),
                    (b'content-length', str(len(body)).encode()),
                    *extra,
                ],
            }
        )
        await send({'type': 'http.response.body', 'body': body})

    async def lifespan(self, receive, send):
        while True:
            message = await receive()
            if message['type'] == 'lifespan.startup':
                loop = asyncio.get_running_loop()
                self._verify_pool = ThreadPoolExecutor(
                    self.verify_threads, thread_name_prefix='immortus-verify'
                )
                loop.set_default_executor(self._verify_pool)
                await self.hub.start()
                if not await self.hub.wait_connected(5):
                    log.warning('redis cannot be reached: streams answer 503 until it can')
                await send({'type': 'lifespan.startup.complete'})
                if self.on_ready is not None:
                    self.on_ready()
            elif message['type'] == 'lifespan.shutdown':
                await self.hub.stop()
                await send({'type': 'lifespan.shutdown.complete'})
                return

    # -- the batch verify -------------------------------------------------

    def batch_verify(self, scope, query):
        """``(status, JSON body)`` of the application's batch verify for
        ``query``, on a request with the stream request's headers (cookies,
        authorization...), client address and scheme."""
        headers: dict[str, str] = {}
        host = None
        for name, value in scope['headers']:
            if name == b'host':
                host = value.decode('latin-1')
            elif name not in SKIPPED_HEADERS:
                key = name.decode('latin-1').title()
                text = value.decode('latin-1')
                headers[key] = headers[key] + ', ' + text if key in headers else text
        headers['Accept'] = 'application/json'
        if host is None:
            server = scope.get('server') or ('localhost', 80)
            host = f'{server[0]}:{server[1]}'
        client = scope.get('client')
        environ = {'REMOTE_ADDR': client[0] if client else '', 'SCRIPT_NAME': ''}
        request = Request.blank(
            f'{self.verify_path}?{query}',
            environ=environ,
            base_url=f'{scope.get("scheme", "http")}://{host}',
            headers=headers,
        )
        response = request.get_response(self.wsgi_app)
        try:
            data = json.loads(response.body)
        except ValueError:
            data = None
        return response.status_code, data

    # -- a stream ---------------------------------------------------------

    def asked(self, query):
        """``(ids, job_class)`` as the batch verify will read them from
        ``query`` (bytes), or ``None`` when it will refuse them."""
        try:
            params = dict(parse_qsl(query.decode('utf-8', 'strict'), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return None
        ids = list(dict.fromkeys(i for i in params.get('ids', '').split(',') if i))
        if not ids or len(ids) > self.batch_max:
            return None
        return [i for i in ids if valid_job_id(i)], params.get('job_class')

    async def stream(self, scope, receive, send, cors):
        hub = self.hub
        loop = asyncio.get_running_loop()
        query = scope.get('query_string', b'')
        asked = self.asked(query)
        held = []
        job_class = None
        if asked is not None:
            ids, job_class = asked
            try:
                held = await hub.acquire(ids, job_class)
            except Unavailable:
                return await self.json(send, 503, {'error': 'backend unavailable'}, cors)
        stream = None
        try:
            since = loop.time()
            try:
                status, data = await loop.run_in_executor(
                    None, self.batch_verify, scope, query.decode('latin-1')
                )
            except Exception:
                log.exception('the batch verify of a stream failed')
                status, data = 500, {'error': 'the batch verify failed'}
            jobs = data.get('jobs') if status == 200 and isinstance(data, dict) else None
            if status != 200 or not isinstance(jobs, dict):
                if not isinstance(data, dict):
                    data = {'error': f'the batch verify answered {status}'}
                return await self.json(send, status if status != 200 else 500, data, cors)
            if any(isinstance(e, dict) and e.get('code') == 503 for e in jobs.values()):
                return await self.json(send, 503, {'error': 'backend unavailable'}, cors)
            await send(
                {
                    'type': 'http.response.start',
                    'status': 200,
                    'headers': [
                        (b'content-type', b'text/event-stream; charset=utf-8'),
                        (b'cache-control', b'no-store'),
                        (b'x-accel-buffering', b'no'),
                        *cors,
                    ],
                }
            )
            by_id = {f.job_id: f for f in held}
            chunks = [b': immortus\n\n']
            follow = []
            for job_id, entry in jobs.items():
                if not isinstance(entry, dict):
                    continue
                chunks.append(job_event(entry))
                if not has_ended(entry) and job_id in by_id:
                    follow.append(by_id[job_id])
            await send({'type': 'http.response.body', 'body': b''.join(chunks), 'more_body': True})
            # only what the batch verify authorized stays held
            keep = set(map(id, follow))
            dropped = [f for f in held if id(f) not in keep]
            held = follow
            if dropped:
                await hub.release(dropped)
            if not follow:
                await send({'type': 'http.response.body', 'body': END_EVENT})
                return
            stream = Stream()
            stream.last_sent = loop.time()
            hub.streams.add(stream)
            for followed in follow:
                hub.join(stream, followed, since)
            await self.pump(stream, receive, send)
        finally:
            if stream is not None:
                hub.streams.discard(stream)
                for followed in list(stream.following.values()):
                    hub.leave(stream, followed)
            if held:
                await hub.release(held)

    async def pump(self, stream, receive, send):
        """Send what ``stream`` gets until its jobs have ended, the client
        has gone, or the gateway stops."""
        hub = self.hub
        loop = asyncio.get_running_loop()

        async def watch():
            while True:
                message = await receive()
                if message['type'] == 'http.disconnect':
                    stream.closed = True
                    stream.wake()
                    return

        watcher = asyncio.ensure_future(watch())
        try:
            while True:
                await stream.wait()
                if stream.closed:  # the client left, or the gateway stops
                    await send({'type': 'http.response.body', 'body': b''})
                    return
                if stream.pending:
                    pending, stream.pending = stream.pending, {}
                    body = b''.join(event for event, _ in pending.values())
                    for job_id, (_, ended) in pending.items():
                        if ended:
                            followed = stream.following.get(job_id)
                            if followed is not None:
                                hub.leave(stream, followed)
                    done = not stream.following
                    if done:
                        body += END_EVENT
                    stream.ping = False
                    stream.last_sent = loop.time()
                    await send({'type': 'http.response.body', 'body': body, 'more_body': not done})
                    if done:
                        return
                elif stream.ping:
                    stream.ping = False
                    stream.last_sent = loop.time()
                    await send({'type': 'http.response.body', 'body': PING, 'more_body': True})
        finally:
            watcher.cancel()


def make_server(app, host='127.0.0.1', port=6544, log_level='info', sock=None):
    """A uvicorn server for ``app`` (uvloop and httptools when installed),
    which ends every open stream when it stops (clients then reconnect)."""
    import uvicorn

    class GatewayServer(uvicorn.Server):
        async def shutdown(self, sockets=None):
            app.hub.close_streams()
            await super().shutdown(sockets=sockets)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan='on',
        log_config=None,
        log_level=log_level,
        access_log=False,
        backlog=4096,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=5,
    )
    return GatewayServer(config)


def listen(host, port):
    """A listening socket on ``host``:``port`` (0: a port from the OS)."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='immortus-events',
        description='Serve Server-Sent Events of pyramid_immortus jobs for the '
        'Pyramid application configured by CONFIG_URI.',
    )
    parser.add_argument('config_uri', help='the .ini file, e.g. production.ini')
    parser.add_argument('--host', default='127.0.0.1', help='default 127.0.0.1')
    parser.add_argument('--port', type=int, default=6544, help='default 6544; 0: any free port')
    parser.add_argument(
        '--read-threads',
        type=int,
        default=4,
        metavar='N',
        help='threads reading changed jobs (default 4)',
    )
    parser.add_argument(
        '--verify-threads',
        type=int,
        default=8,
        metavar='N',
        help='threads running the batch verify of opening streams (default 8)',
    )
    parser.add_argument('--log-level', default='info')
    return parser.parse_args(argv)


def main(argv=None):
    """The ``immortus-events`` console script."""
    from pyramid.paster import bootstrap, setup_logging

    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.config_uri)
    env = bootstrap(args.config_uri)
    try:
        registry = env['registry']
        parsed = get_settings(registry)
        if parsed.queue_adapter in ('async', 'inline') and parsed.tracking_strategy in (
            None,
            'memory',
        ):
            log.warning(
                'the memory strategy lives in the web process: this gateway cannot '
                'see its jobs (use the redis or rq strategy)'
            )
        app = EventsApp(env['app'], registry, args.read_threads, args.verify_threads)
        sock = listen(args.host, args.port)
        host, port = sock.getsockname()[:2]
        server = make_server(app, args.host, port, args.log_level.lower())
        app.on_ready = lambda: print(
            f'immortus-events: serving {app.events_path} on http://{host}:{port}', flush=True
        )
        server.run(sockets=[sock])
    finally:
        env['closer']()
    return 0


__all__ = ['EventsApp', 'MAX_JOB_ID_LENGTH', 'main', 'make_server']
