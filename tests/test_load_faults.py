"""Load and faults, on loopback, bounded in time: many polling pages
against waitress; Redis restarted while a page polls; the web process
restarted between create and verify."""

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import REDIS_URL, ROOT, unavailable, wait_for, write_ini

PAGES = 200
INTERVAL = 0.5
SECONDS = 20


def post(url, *args):
    request = urllib.request.Request(
        url,
        method='POST',
        data=json.dumps({'args': args}).encode(),
        headers={'Content-Type': 'application/json'},
    )
    return json.load(urllib.request.urlopen(request))


def get(url):
    try:
        with urllib.request.urlopen(url) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


async def page(port, path, until, latencies, failures):
    """One page: a keep-alive connection, GET every INTERVAL after the answer."""
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    request = f'GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n'.encode()
    try:
        while time.monotonic() < until:
            started = time.monotonic()
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b'\r\n', b''):
                name, _, value = line.decode().partition(':')
                if name.lower() == 'content-length':
                    length = int(value)
            body = await reader.readexactly(length)
            latencies.append(time.monotonic() - started)
            if status != 200 or json.loads(body)['status'] != 'queued':
                failures.append((status, body[:200]))
            await asyncio.sleep(INTERVAL)
    finally:
        writer.close()


async def pages(port, path):
    latencies, failures = [], []
    until = time.monotonic() + SECONDS
    await asyncio.gather(*(page(port, path, until, latencies, failures) for _ in range(PAGES)))
    return latencies, failures


def test_200_pages_polling_for_20_seconds(tmp_path, serve, redis_db):
    ini = write_ini(
        tmp_path / 'load.ini',
        {
            'immortus.queue_adapter': 'rq',
            'immortus.redis_url': REDIS_URL,
            'immortus.rq.queue': 'load',
        },
    )
    server = serve(ini)
    job_id = post(server.url + '/create/Add', 1, 2)['job_id']
    # a thread of its own: Playwright's sync API may own this thread's event loop
    with ThreadPoolExecutor(1) as pool:
        latencies, failures = pool.submit(
            asyncio.run, pages(server.port, f'/immortus/verify/{job_id}')
        ).result()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(
        f'\n{PAGES} pages x {SECONDS} s at {INTERVAL * 1000:.0f} ms: {len(latencies)} '
        f'verifies, {len(latencies) / SECONDS:.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, '
        f'{len(failures)} errors'
    )
    assert failures == []
    # every page kept polling for the whole time
    assert len(latencies) >= PAGES * SECONDS / (INTERVAL + 1.0)


@pytest.fixture
def node():
    path = shutil.which('node')
    if path is None:
        unavailable('node is not installed')
    return path


def test_redis_restarted_while_a_page_polls(tmp_path, serve, processes, private_redis, node):
    ini = write_ini(
        tmp_path / 'faults.ini',
        {
            'immortus.queue_adapter': 'rq',
            'immortus.redis_url': private_redis.url,
            'immortus.rq.queue': 'faults',
        },
    )
    server = serve(ini)
    processes.worker(ini)
    job_id = post(server.url + '/create/Slow', 6, 30)['job_id']
    poller = subprocess.Popen(
        [node, os.path.join(ROOT, 'tests', 'js', 'poll.js'), server.url, job_id, '200', '6'],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: get(f'{server.url}/immortus/verify/{job_id}')[1].get('status') == 'started'
        )
        private_redis.stop()
        assert get(f'{server.url}/immortus/verify/{job_id}')[0] == 503
        time.sleep(1.0)
        private_redis.start()
        out, _ = poller.communicate(timeout=60)
    finally:
        if poller.poll() is None:
            poller.kill()
            poller.wait()
    result = json.loads(out)
    assert result['outcome'] == 'fulfilled', result
    assert result['value']['completed'] is True
    assert 503 in result['statuses'] or 'network error' in result['statuses']
    assert result['statuses'][-1] == 200


def test_web_process_restarted_between_create_and_verify(tmp_path, serve, processes, redis_db):
    ini = write_ini(
        tmp_path / 'restart.ini',
        {
            'immortus.queue_adapter': 'rq',
            'immortus.redis_url': REDIS_URL,
            'immortus.rq.queue': 'restart',
        },
    )
    first = serve(ini)
    job_id = post(first.url + '/create/Add', 1, 2)['job_id']
    first.proc.send_signal(signal.SIGTERM)
    first.proc.wait(10)
    second = serve(ini)
    status, data = get(f'{second.url}/immortus/verify/{job_id}')
    assert (status, data['status']) == (200, 'queued')
    worker = processes.worker(ini, '--burst')
    assert worker.wait(60) == 0
    data = get(f'{second.url}/immortus/verify/{job_id}')[1]
    assert data['status'] == 'finished' and data['completed'] is True
