"""Helpers of the test suite: plain functions, classes and constants that
test modules import (``from tests.support import wait_for``).

Fixtures live in ``tests/conftest.py`` and are built from these; nothing
here is a fixture, and no test module imports from another test module.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis
from pyramid.authorization import ACLHelper, Allow, Authenticated

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDIS_URL = os.environ.get('IMMORTUS_TEST_REDIS_URL', 'redis://127.0.0.1:6379/13')
IN_CI = os.environ.get('CI', '').lower() == 'true'


def unavailable(reason):
    """Fail under CI (where everything must be installed), skip elsewhere."""
    if IN_CI:
        pytest.fail(f'{reason} (CI=true: nothing may be skipped)')
    pytest.skip(reason)


# -- the test database --------------------------------------------------------

#: The key by which the suite recognises a database as its own.  The suite
#: empties the test database before each test that uses it, and only when the
#: database is empty or holds this key: a database with keys but without it
#: holds someone else's data (rq's ``rq:`` and the add-on's ``immortus:``
#: keys are what a real application writes too, so no prefix can tell the
#: suite's keys from an application's), and is refused, never emptied.
#: The suite writes the key when a test that used the database ends and when
#: the session ends (not before a test: a test sees the database empty).
OWNED_KEY = 'immortus-test:owned'

# Empties the database if it is empty, holds OWNED_KEY or was claimed by this
# session already (ARGV[1] == '1'); answers 1 if it did, else the key count.
_CLAIM = """
local size = redis.call('DBSIZE')
if ARGV[1] == '1' or size == 0 or redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('FLUSHDB')
    return 1
end
return -size
"""

#: The URLs of the databases this process has claimed (checked once, then
#: emptied at will: the keys there since are the suite's).
_claimed = set()


def empty_test_db(url=REDIS_URL):
    """A client on the test database, emptied; fails (CI) or skips when
    Redis cannot be reached, and fails when the database holds keys the
    test suite did not write (see ``OWNED_KEY``)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        client.close()
        unavailable(f'Redis is not reachable at {url}: {exc}')
    answer = client.eval(_CLAIM, 1, OWNED_KEY, '1' if url in _claimed else '0')
    if answer != 1:
        client.close()
        pytest.fail(
            f'the test database {url} holds {-answer} keys and not {OWNED_KEY!r}, the key '
            f"the test suite writes there: they are not the suite's, and it will not empty "
            f'the database. Set IMMORTUS_TEST_REDIS_URL to an empty database, or, if the '
            f'keys are only what an interrupted test run left, empty it yourself '
            f'(redis-cli -u {url} flushdb).',
            pytrace=False,
        )
    _claimed.add(url)
    # marked at once, so that a run killed in the middle of a test leaves a
    # database the next run may empty
    client.set(OWNED_KEY, 'the pyramid_immortus test suite empties this database')
    return client


def mark_test_db(client=None, url=REDIS_URL):
    """Write ``OWNED_KEY`` in a database this process claimed; quietly does
    nothing when Redis cannot be reached."""
    if url not in _claimed:
        return
    own = client is None
    if own:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.set(OWNED_KEY, 'the pyramid_immortus test suite empties this database')
    except redis.exceptions.RedisError:
        pass
    finally:
        if own:
            client.close()


def pings(client):
    try:
        return client.ping()
    except redis.exceptions.ConnectionError:
        return False


class PrivateRedis:
    """A redis-server of a test's own, on a port from the OS, that keeps its
    data across a restart (append-only file in ``directory``)."""

    def __init__(self, processes, directory):
        self.processes = processes
        self.port = free_port()
        self.url = f'redis://127.0.0.1:{self.port}/0'
        self.args = [
            'redis-server',
            '--port',
            str(self.port),
            '--bind',
            '127.0.0.1',
            '--save',
            '',
            '--appendonly',
            'yes',
            '--dir',
            str(directory),
        ]
        self.client = redis.Redis(port=self.port)
        self.proc = None

    def start(self):
        self.proc = self.processes.start(*self.args, log_name='redis')
        wait_for(lambda: pings(self.client), message='redis-server')
        return self

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


# -- processes ----------------------------------------------------------------


def write_ini(path, settings, app='call:tests.integration_app:main'):
    """Write a PasteDeploy .ini for the integration app with ``settings``."""
    lines = ['[app:main]', f'use = {app}']
    lines += [f'{key} = {value}' for key, value in settings.items()]
    lines += [
        '',
        '[loggers]',
        'keys = root',
        '',
        '[handlers]',
        'keys = console',
        '',
        '[formatters]',
        'keys = generic',
        '',
        '[logger_root]',
        'level = INFO',
        'handlers = console',
        '',
        '[handler_console]',
        'class = StreamHandler',
        'args = (sys.stderr,)',
        'level = NOTSET',
        'formatter = generic',
        '',
        '[formatter_generic]',
        'format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s',
        '',
    ]
    path.write_text('\n'.join(lines))
    return str(path)


def read_log(proc):
    """The whole log of a process started by ``Processes.start``."""
    with open(proc.log_path, encoding='utf-8', errors='replace') as f:
        return f.read()


def log_line(proc, prefix):
    """The first line of ``proc``'s log that starts with ``prefix``, or
    ``None`` while there is none; fails with the log if ``proc`` exited."""
    with open(proc.log_path, encoding='utf-8', errors='replace') as f:
        for line in f:
            if line.startswith(prefix):
                return line
    assert proc.poll() is None, read_log(proc)
    return None


class Processes:
    """Starts subprocesses in their own sessions and stops each by its pid
    (its whole process group, so an rq work horse goes with its worker)."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.started = []

    def start(self, *args, log_name='proc'):
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
        log_path = str(self.tmp_path / f'{log_name}-{len(self.started)}.log')
        # the child keeps its own descriptor of the log: ours is closed at once
        with open(log_path, 'wb') as log:
            proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc.log_path = log_path
        self.started.append(proc)
        return proc

    def worker(self, ini, *options):
        return self.start(
            sys.executable, '-m', 'pyramid_immortus.worker', ini, *options, log_name='worker'
        )

    def kill(self, proc, sig=signal.SIGKILL):
        """Send ``sig`` to ``proc`` and every process below it (an rq work
        horse runs in a process group of its own)."""
        for pid in [proc.pid] + descendants(proc.pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stop_all(self):
        for proc in self.started:
            if proc.poll() is None:
                children = descendants(proc.pid)
                self.kill(proc, signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.kill(proc)
                    proc.wait(5)
                for pid in children:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


def descendants(pid):
    """The pids below ``pid``, from /proc."""
    found = []
    try:
        tasks = os.listdir(f'/proc/{pid}/task')
    except FileNotFoundError:
        return found
    for tid in tasks:
        try:
            with open(f'/proc/{pid}/task/{tid}/children') as f:
                children = [int(c) for c in f.read().split()]
        except FileNotFoundError:
            continue
        for child in children:
            found += [child] + descendants(child)
    return found


class Served:
    """An app served by ``tests.serve`` in a subprocess."""

    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.url = f'http://127.0.0.1:{port}'


def start_server(processes, ini):
    """Serve a .ini's app with waitress (``tests.serve``) on a port from the
    OS; return it once it listens."""
    proc = processes.start(sys.executable, '-m', 'tests.serve', ini, log_name='server')

    def port():
        line = log_line(proc, 'PORT ')
        return int(line.split()[1]) if line else None

    return Served(proc, wait_for(port, timeout=30, message='the server'))


def wait_for(predicate, timeout=15, interval=0.05, message='condition'):
    """Poll ``predicate`` until it returns a true value; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout}s waiting for {message}')
        time.sleep(interval)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# -- the integration app on rq ------------------------------------------------


def rq_settings(url=REDIS_URL, **extra):
    """Settings of the integration app on the rq adapter and test queue."""
    return {
        'immortus.queue_adapter': 'rq',
        'immortus.redis_url': url,
        'immortus.rq.queue': 'itest',
        **extra,
    }


def create(app, name, *args, status=200):
    """Create a job of the integration app (``/create/{name}``)."""
    return app.post_json(f'/create/{name}', {'args': list(args)}, status=status).json


def verify(app, job_id, status=200):
    return app.get(f'/immortus/verify/{job_id}', status=status).json


def run_burst(processes, ini, *options):
    """Run ``immortus-worker --burst`` to its end; it must exit 0."""
    worker = processes.worker(ini, '--burst', *options)
    assert worker.wait(60) == 0, read_log(worker)
    return worker


# -- users ----------------------------------------------------------------------


class HeaderSecurityPolicy:
    """The user is the X-User header; 'view-jobs' is granted to users in
    X-Roles: viewer."""

    def identity(self, request):
        user = request.headers.get('X-User')
        if not user:
            return None
        return {'userid': user, 'roles': request.headers.get('X-Roles', '').split(',')}

    def authenticated_userid(self, request):
        identity = request.identity
        return identity['userid'] if identity else None

    def permits(self, request, context, permission):
        identity = request.identity
        principals = ['system.Everyone']
        if identity:
            principals += [Authenticated, identity['userid']]
            principals += [f'role:{r}' for r in identity['roles'] if r]
        return ACLHelper().permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


class Root:
    __acl__ = [(Allow, 'role:viewer', 'view-jobs'), (Allow, Authenticated, 'create')]

    def __init__(self, request):
        pass


ALICE = {'X-User': 'alice'}
BOB = {'X-User': 'bob'}
UNKNOWN = {'status': 'unknown', 'error': 'unknown job'}


# -- the events gateway ---------------------------------------------------------


def start_gateway(processes, ini, *options):
    """``immortus-events ini --port 0``: ``(process, base URL)``."""
    proc = processes.start(
        sys.executable,
        '-m',
        'pyramid_immortus.events',
        ini,
        '--port',
        '0',
        *options,
        log_name='events',
    )

    def url():
        line = log_line(proc, 'immortus-events: serving')
        return line.rsplit(' ', 1)[1].strip() if line else None

    return proc, wait_for(url, timeout=30, message='the events gateway')
