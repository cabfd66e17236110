"""The events gateway (immortus-events) against real Redis: streams,
authorization through the batch verify, throttling, shared reads and
faults (Redis down or restarted, slow and vanishing clients, a restarted
gateway)."""

import http.client
import json
import signal
import socket
import sys
import threading
import time

import pytest
from pyramid.exceptions import ConfigurationError

from pyramid_immortus.settings import parse_settings
from pyramid_immortus.strategies.redis import RedisStrategy
from tests.support import REDIS_URL, rq_settings, start_gateway, wait_for, write_ini


class SSE:
    """A stream read line by line: ``events()`` parses them."""

    def __init__(self, base, query, headers=None, timeout=5):
        host, port = base.split('//')[1].split(':')
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.conn.request('GET', '/immortus/events?' + query, headers=headers or {})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.comments = 0

    def json(self):
        return json.loads(self.response.read())

    def next(self):
        """The next ``(event, data)``, or ``None`` at the end of the stream."""
        kind, data = None, None
        while True:
            line = self.response.readline()
            if not line:
                return None
            line = line.decode().rstrip('\n')
            if line.startswith(':'):
                self.comments += 1
            elif line.startswith('event: '):
                kind = line[7:]
            elif line.startswith('data: '):
                data = json.loads(line[6:])
            elif line == '' and kind is not None:
                return kind, data

    def until_end(self):
        events = []
        while True:
            event = self.next()
            if event is None:
                return events, False
            events.append(event)
            if event[0] == 'end':
                assert self.next() is None  # and the stream closes
                return events, True

    def close(self):
        self.conn.close()


def settings(url=REDIS_URL, **extra):
    return {
        'immortus.queue_adapter': 'async',
        'immortus.tracking_strategy': 'redis',
        'immortus.redis_url': url,
        'immortus.progress_interval': '0.3',
        **extra,
    }


@pytest.fixture
def gateway(tmp_path, processes, redis_db):
    """Start a gateway on ``events_app`` with ``settings``: its base URL."""

    def start(app='call:tests.events_app:main', **extra):
        ini = write_ini(
            tmp_path / f'events-{len(processes.started)}.ini', settings(**extra), app=app
        )
        proc, url = start_gateway(processes, ini)
        start.proc, start.ini = proc, ini
        return url

    return start


@pytest.fixture
def jobs(redis_db):
    return RedisStrategy(redis_db, ttl=600)


ALICE = {'X-User': 'alice'}


def test_a_stream_follows_its_jobs_to_their_end(gateway, jobs):
    url = gateway()
    jobs.job_created('a', 'Steps', 'alice')
    jobs.job_created('b', 'Steps', None)
    stream = SSE(url, 'ids=a,b,nope,bad!', ALICE)
    assert stream.status == 200
    assert stream.response.getheader('Content-Type').startswith('text/event-stream')
    assert stream.response.getheader('Cache-Control') == 'no-store'
    assert stream.response.getheader('Access-Control-Allow-Origin') is None
    first = [stream.next() for _ in range(4)]
    assert [(d['job_id'], d['code'], d.get('status')) for _, d in first] == [
        ('a', 200, 'queued'),
        ('b', 200, 'queued'),
        ('nope', 404, 'unknown'),
        ('bad!', 400, None),
    ]
    jobs.job_started('a')
    assert stream.next()[1]['status'] == 'started'
    jobs.job_finished('a')
    jobs.job_failed('b', ValueError('no'))
    events, ended = stream.until_end()
    assert ended and events[-1] == ('end', {})
    final = {d['job_id']: d for kind, d in events if kind == 'job'}
    assert final['a']['completed'] is True and final['b']['error'] == 'ValueError: no'
    assert final['b']['code'] == 200


def test_authorization_is_the_batch_verify(gateway, jobs):
    url = gateway()
    jobs.job_created('alices', 'Steps', 'alice')
    jobs.job_created('bobs', 'Steps', 'bob')
    for headers in ({}, {'X-User': 'blocked'}):
        refused = SSE(url, 'ids=alices', headers)
        assert refused.status == 403
        assert refused.response.getheader('Content-Type') == 'application/json'
        assert refused.json() == {'error': 'forbidden'}
    # bob, by cookie: alice's job is unknown to him, and stays so
    bob = SSE(url, 'ids=alices,bobs', {'Cookie': 'user=bob'})
    first = [bob.next()[1] for _ in range(2)]
    assert first[0] == {
        'job_id': 'alices',
        'status': 'unknown',
        'error': 'unknown job',
        'code': 404,
    }
    assert (first[1]['job_id'], first[1]['status'], first[1]['code']) == ('bobs', 'queued', 200)
    alice = SSE(url, 'ids=alices', ALICE)
    assert alice.next()[1]['status'] == 'queued'
    jobs.job_progress('alices', 1, 2, 'secret')
    jobs.job_finished('alices')
    assert alice.until_end()[1]
    jobs.job_finished('bobs')
    events, ended = bob.until_end()
    assert ended
    assert [d['job_id'] for kind, d in events if kind == 'job'] == ['bobs']
    assert 'secret' not in json.dumps(events)
    # a job_class that is not the job's own, an unknown class: as a batch
    other = SSE(url, 'ids=alices&job_class=Nope', ALICE)
    assert other.next()[1] == {'job_id': 'alices', 'error': 'unknown job class', 'code': 404}
    too_many = SSE(url, 'ids=' + ','.join(f'j{i}' for i in range(101)), ALICE)
    assert too_many.status == 400 and 'at most 100' in too_many.json()['error']


def test_cors_headers_only_for_the_listed_origins(gateway, jobs):
    url = gateway(**{'immortus.events.allow_origins': 'http://127.0.0.1:3000 https://app.example'})
    jobs.job_created('c', 'Steps', None)
    allowed = SSE(url, 'ids=c', dict(ALICE, Origin='https://app.example'))
    assert allowed.response.getheader('Access-Control-Allow-Origin') == 'https://app.example'
    assert allowed.response.getheader('Access-Control-Allow-Credentials') == 'true'
    other = SSE(url, 'ids=c', dict(ALICE, Origin='https://evil.example'))
    assert other.status == 200
    assert other.response.getheader('Access-Control-Allow-Origin') is None
    assert other.response.getheader('Access-Control-Allow-Credentials') is None
    denied = SSE(url, 'ids=c', {'Origin': 'https://app.example'})
    assert denied.status == 403
    assert denied.response.getheader('Access-Control-Allow-Origin') == 'https://app.example'


def test_progress_is_throttled_and_each_change_read_once_for_all_streams(gateway, jobs, redis_db):
    url = gateway()
    jobs.job_created('p', 'Steps', None)
    jobs.job_started('p')
    streams = [SSE(url, 'ids=p', ALICE) for _ in range(5)]
    for stream in streams:
        assert stream.next()[1]['status'] == 'started'
    time.sleep(0.4)
    before = hgetall_calls(redis_db)
    started = time.monotonic()
    for step in range(30):  # 30 progress writes in 0.6 s: interval 0.3 s
        jobs.job_progress('p', step, 30, None)
        time.sleep(0.02)
    jobs.job_finished('p')
    counts = []
    for stream in streams:
        events, ended = stream.until_end()
        assert ended and events[-2][1]['status'] == 'finished'
        counts.append(len(events) - 1)
    elapsed = time.monotonic() - started
    reads = hgetall_calls(redis_db) - before
    assert max(counts) <= elapsed / 0.3 + 2, counts
    assert reads <= elapsed / 0.3 + 2, reads  # not one per stream


def hgetall_calls(client):
    return client.info('commandstats').get('cmdstat_hgetall', {}).get('calls', 0)


def test_an_idle_stream_gets_a_comment(gateway, jobs):
    url = gateway(**{'immortus.events.keepalive': '0.4'})
    jobs.job_created('k', 'Steps', None)
    stream = SSE(url, 'ids=k', ALICE)
    stream.next()
    time.sleep(1.0)
    jobs.job_finished('k')
    stream.until_end()
    assert stream.comments >= 2  # the opening comment and a keepalive


def test_redis_down_then_restarted(gateway, private_redis, processes):
    url = gateway(**{'immortus.redis_url': private_redis.url})
    strategy = RedisStrategy(private_redis.client, ttl=600)
    strategy.job_created('r', 'Steps', None)
    stream = SSE(url, 'ids=r', ALICE, timeout=20)
    assert stream.next()[1]['status'] == 'queued'
    # a change written without a message: only a re-read after the restart finds it
    private_redis.client.hset('immortus:job:r', 'status', 'started')
    private_redis.stop()
    refused = wait_for(
        lambda: (lambda s: s if s.status == 503 else None)(SSE(url, 'ids=r', ALICE)),
        message='a 503 while Redis is down',
    )
    assert refused.json() == {'error': 'backend unavailable'}
    private_redis.start()
    assert stream.next()[1]['status'] == 'started'
    strategy.job_finished('r')
    assert stream.until_end()[1]
    fresh = SSE(url, 'ids=r', ALICE)
    assert fresh.status == 200 and fresh.until_end()[1]


def test_a_client_that_stops_reading_costs_bounded_memory_and_delays_nobody(gateway, jobs):
    url = gateway(**{'immortus.progress_interval': '0'})
    jobs.job_created('s', 'Steps', None)
    jobs.job_started('s')
    host, port = url.split('//')[1].split(':')
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect((host, int(port)))
    stuck.sendall(b'GET /immortus/events?ids=s HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n\r\n')
    reader = SSE(url, 'ids=s', ALICE)
    reader.next()
    time.sleep(0.3)
    rss_before = rss(gateway.proc.pid)
    big = 'x' * 50000
    lags = []
    for step in range(300):  # 15 MB for each stream that kept everything
        written = time.monotonic()
        jobs.job_progress('s', step, 300, big + str(step))
        while True:
            kind, data = reader.next()
            if data['progress']['current'] == step:
                break
        lags.append(time.monotonic() - written)
    grown = rss(gateway.proc.pid) - rss_before
    assert sorted(lags)[int(len(lags) * 0.99)] < 0.5, lags
    assert grown < 6_000_000, grown
    stuck.close()


def rss(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024


def test_clients_that_go_away_are_released(gateway, jobs, redis_db):
    url = gateway()
    ids = [f'g{i}' for i in range(10)]
    for job_id in ids:
        jobs.job_created(job_id, 'Steps', None)
    host, port = url.split('//')[1].split(':')

    def cycles(count, offset):
        for n in range(count):
            sock = socket.create_connection((host, int(port)))
            query = ','.join(ids[(n + offset) % 10 : (n + offset) % 10 + 3])
            sock.sendall(
                f'GET /immortus/events?ids={query} HTTP/1.1\r\nHost: x\r\n'
                'X-User: alice\r\n\r\n'.encode()
            )
            if n % 2:
                sock.recv(100)  # half of them leave once the stream has begun
            sock.close()

    threads = [threading.Thread(target=cycles, args=(100, t)) for t in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    channels = wait_for(
        lambda: not redis_db.pubsub_channels('immortus:job:*') or None,
        message='no subscription left',
    )
    assert channels
    wait_for(lambda: connections_to(int(port)) == 0, message='every connection closed')
    still = SSE(url, 'ids=g1', ALICE)  # and the gateway still serves
    assert still.next()[1]['status'] == 'queued'


def connections_to(port):
    """Open TCP connections to the local ``port`` (the server's ends)."""
    count = 0
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(':')[1], 16) == port and fields[3] in ('01', '08'):
                count += 1
    return count


def test_a_restarted_gateway_serves_the_current_state(gateway, jobs, processes):
    url = gateway()
    jobs.job_created('z', 'Steps', None)
    stream = SSE(url, 'ids=z', ALICE)
    stream.next()
    processes.kill(gateway.proc, signal.SIGTERM)
    events, ended = stream.until_end()
    assert not ended  # no end event: an EventSource reconnects
    jobs.job_started('z')
    port = url.rsplit(':', 1)[1]
    proc = processes.start(
        sys.executable,
        '-m',
        'pyramid_immortus.events',
        gateway.ini,
        '--port',
        port,
        log_name='events',
    )
    wait_for(lambda: 'serving' in open(proc.log_path).read(), message='the new gateway')
    again = SSE(url, 'ids=z', ALICE)
    assert again.next()[1]['status'] == 'started'


def test_rq_jobs_publish_their_life_and_progress(tmp_path, processes, redis_db, make_rq_app):
    app, ini = make_rq_app(**{'immortus.progress_interval': '0'})
    job_id = app.post_json('/create/Slow', {'args': [0.6, 3]}).json['job_id']
    gw_ini = write_ini(
        tmp_path / 'rq-events.ini', rq_settings(**{'immortus.progress_interval': '0'})
    )
    _, url = start_gateway(processes, gw_ini)
    stream = SSE(url, f'ids={job_id}', timeout=30)
    assert stream.next()[1]['status'] == 'queued'
    processes.worker(ini, '--burst')
    events, ended = stream.until_end()
    states = [d['status'] for kind, d in events if kind == 'job']
    assert ended and states[-1] == 'finished' and 'started' in states
    assert len(states) >= 3  # started, progress..., finished: pushed, not polled
    assert events[-2][1]['rq_status'] == 'finished'


def test_the_origins_setting():
    parsed = parse_settings({'immortus.events.allow_origins': 'http://a:1, https://b.example'})
    assert parsed.events_allow_origins == ('http://a:1', 'https://b.example')
    assert parse_settings({}).events_path == '/immortus/events'
    for bad in ('ftp://a', 'http://a/path', 'a.example', 'http://a:x'):
        with pytest.raises(ConfigurationError, match='events.allow_origins'):
            parse_settings({'immortus.events.allow_origins': bad})
