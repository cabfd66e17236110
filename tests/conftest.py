import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis
from pyramid.config import Configurator
from pyramid.paster import get_app
from webtest import TestApp


@pytest.fixture
def make_config():
    """Build an uncommitted Configurator that includes the add-on."""

    def make(settings=None, include=True):
        config = Configurator(settings=dict(settings or {}))
        if include:
            config.include('pyramid_immortus')
        return config

    return make


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDIS_URL = os.environ.get('IMMORTUS_TEST_REDIS_URL', 'redis://127.0.0.1:6379/13')
IN_CI = os.environ.get('CI', '').lower() == 'true'


def unavailable(reason):
    """Fail under CI (where everything must be installed), skip elsewhere."""
    if IN_CI:
        pytest.fail(f'{reason} (CI=true: nothing may be skipped)')
    pytest.skip(reason)


def empty_test_db():
    """A client on the test database, emptied; fails (CI) or skips when
    Redis cannot be reached."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        unavailable(f'Redis is not reachable at {REDIS_URL}: {exc}')
    client.flushdb()
    return client


@pytest.fixture
def redis_db():
    """A client on the test database, emptied before each test."""
    client = empty_test_db()
    yield client
    client.close()


def write_ini(path, settings, app='call:tests.integration_app:main'):
    """Write a PasteDeploy .ini for the integration app with ``settings``."""
    lines = ['[app:main]', f'use = {app}']
    lines += [f'{key} = {value}' for key, value in settings.items()]
    lines += ['', '[loggers]', 'keys = root', '', '[handlers]', 'keys = console',
              '', '[formatters]', 'keys = generic', '', '[logger_root]',
              'level = INFO', 'handlers = console', '', '[handler_console]',
              'class = StreamHandler', 'args = (sys.stderr,)', 'level = NOTSET',
              'formatter = generic', '', '[formatter_generic]',
              'format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s', '']
    path.write_text('\n'.join(lines))
    return str(path)


class Processes:
    """Starts subprocesses in their own sessions and stops each by its pid
    (its whole process group, so an rq work horse goes with its worker)."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.started = []

    def start(self, *args, log_name='proc'):
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
        log = open(self.tmp_path / f'{log_name}-{len(self.started)}.log', 'wb')
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        proc.log_path = log.name
        self.started.append(proc)
        return proc

    def worker(self, ini, *options):
        return self.start(sys.executable, '-m', 'pyramid_immortus.worker', ini,
                          *options, log_name='worker')

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


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


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


class Served:
    """An app served by ``tests.serve`` in a subprocess."""

    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.url = f'http://127.0.0.1:{port}'


@pytest.fixture
def serve(processes):
    """Serve a .ini's app with waitress on a port from the OS."""

    def start(ini):
        proc = processes.start(sys.executable, '-m', 'tests.serve', ini, log_name='server')
        log = proc.log_path

        def port():
            for line in open(log, encoding='utf-8', errors='replace'):
                if line.startswith('PORT '):
                    return int(line.split()[1])
            assert proc.poll() is None, open(log).read()
            return None

        return Served(proc, wait_for(port, timeout=30, message='the server'))

    return start


@pytest.fixture(scope='session')
def chromium(tmp_path_factory):
    """A headless Chromium for the session, stopped by its pid at the end."""
    from tests.browser import Chromium, find_chromium

    if find_chromium() is None:
        unavailable('chromium is not installed')
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable('playwright is not installed')
    browser = Chromium(tmp_path_factory.mktemp('chromium-profile')).start()
    yield browser
    browser.stop()


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def private_redis(processes, tmp_path):
    """A redis-server of this test's own, on a port from the OS, that keeps
    its data across a restart (append-only file)."""
    port = free_port()
    args = ['redis-server', '--port', str(port), '--bind', '127.0.0.1', '--save', '',
            '--appendonly', 'yes', '--dir', str(tmp_path)]
    try:
        server = processes.start(*args, log_name='redis')
    except FileNotFoundError:
        unavailable('redis-server is not installed')
    client = redis.Redis(port=port)
    wait_for(lambda: _pings(client), message='redis-server')

    class Server:
        url = f'redis://127.0.0.1:{port}/0'

        def stop(self):
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)

        def start(self):
            self.proc = processes.start(*args, log_name='redis')
            wait_for(lambda: _pings(client), message='redis-server')

    instance = Server()
    instance.proc = server
    instance.client = client
    return instance


def _pings(client):
    try:
        return client.ping()
    except redis.exceptions.ConnectionError:
        return False


def rq_settings(url=REDIS_URL, **extra):
    """Settings of the integration app on the rq adapter and test queue."""
    return {'immortus.queue_adapter': 'rq', 'immortus.redis_url': url,
            'immortus.rq.queue': 'itest', **extra}


@pytest.fixture
def make_rq_app(tmp_path):
    """Build the integration app on the rq adapter: ``(TestApp, ini path)``."""
    def make(**settings):
        ini = write_ini(tmp_path / 'app.ini', rq_settings(**settings))
        return TestApp(get_app(ini)), ini

    return make
