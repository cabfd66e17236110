"""What a finished job's result costs on the verify path: requests per
second of ``GET verify`` for a finished job that returned nothing against
one that returned 1 KB of JSON, on the memory, redis and rq strategies, in
one run.

    python bench/results.py [--seconds 5] [--rounds 3] [--connections 32] [--threads 2]

Serves this module's application with waitress (8 threads, bench/serve.py)
on loopback, twice: on the ``async`` adapter for the ``memory`` and
``redis`` strategies (the jobs run in the web process), and on the ``rq``
adapter for the ``rq`` strategy (the jobs run in ``immortus-worker
--burst``).  Each job runs to its end first; then the verify URL of each
finished job is loaded with wrk (Debian package ``wrk``) over keep-alive
connections, or, without wrk, with as many Python threads on keep-alive
``http.client`` connections as ``--connections`` (slower: the load
generator is Python).  The rows run in turn, ``--rounds`` times; each cell
is the median.  Ratios are to the row without a result on the same
strategy; Redis commands per request are counted with MONITOR
over 20 requests before the load.  Needs Redis at ``--redis-url`` (default
redis://127.0.0.1:6379/14, which it empties).
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import redis
from pyramid.config import Configurator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.app import LOGGING  # noqa: E402
from bench.verify import start_server, wrk  # noqa: E402
from pyramid_immortus import Job  # noqa: E402

#: About 1 KB of JSON once serialised (``len(dumps(RESULT))``: 1,017 bytes).
RESULT = {
    'invoice': 'INV-2026-00042',
    'lines': [
        {
            'sku': f'SKU-{i:05d}',
            'description': f'line {i} of the order',
            'qty': i % 7 + 1,
            'price': round(9.99 + i, 2),
        }
        for i in range(12)
    ],
    'total': 1234.5,
}


class NoResult(Job):
    abstract = True

    def perform(self):
        return None


class WithResult(Job):
    abstract = True

    def perform(self):
        return RESULT


class MemoryNone(NoResult):
    pass


class MemoryResult(WithResult):
    pass


class RedisNone(NoResult):
    pass


class RedisResult(WithResult):
    pass


class RQNone(NoResult):
    pass


class RQResult(WithResult):
    pass


JOBS = {
    'memory': (MemoryNone, MemoryResult),
    'redis': (RedisNone, RedisResult),
    'rq': (RQNone, RQResult),
}


def create(request):
    strategy, kind = request.matchdict['strategy'], request.matchdict['kind']
    return JOBS[strategy][kind == 'result'].perform_later(request)


def make_app(global_config, **settings):
    """The web application: the jobs of the strategies in ``bench.strategies``."""
    strategies = settings.pop('bench.strategies').split()
    with Configurator(settings=settings) as config:
        config.include('pyramid_immortus')
        config.add_route('create', '/create/{strategy}/{kind}', request_method='POST')
        config.add_view(create, route_name='create', renderer='immortus')
        for strategy in strategies:
            for job_class in JOBS[strategy]:
                config.add_immortus_job(job_class, tracking_strategy=strategy)
    return config.make_wsgi_app()


INI = (
    """[app:main]
use = call:bench.results:make_app
immortus.queue_adapter = {adapter}
immortus.redis_url = {url}
immortus.rq.queue = bench-results
bench.strategies = {strategies}

"""
    + LOGGING
)


def python_load(url, seconds, connections):
    """wrk's numbers from Python threads on keep-alive connections:
    ``(req/s, p50 ms, p99 ms, non-2xx)``."""
    parsed = urllib.request.urlparse(url)
    latencies, errors, lock = [], [0], threading.Lock()
    deadline = time.perf_counter() + seconds

    def load():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        mine, bad = [], 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            conn.request('GET', parsed.path)
            answer = conn.getresponse()
            answer.read()
            mine.append(time.perf_counter() - started)
            bad += answer.status >= 300
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=load) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()

    def percentile(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000

    return len(latencies) / seconds, percentile(50), percentile(99), errors[0]


def create_job(base, strategy, kind):
    request = urllib.request.Request(f'{base}/create/{strategy}/{kind}', method='POST')
    return json.load(urllib.request.urlopen(request))


def finished(base, job, kind, timeout=60):
    """Wait for the end of ``job``; its verify path and answer size."""
    path = f'/immortus/verify/{job["job_id"]}/{job["job_class"]}'
    deadline = time.monotonic() + timeout
    while True:
        body = urllib.request.urlopen(base + path).read()
        answer = json.loads(body)
        if answer['status'] == 'finished':
            expected = None if kind == 'none' else RESULT
            assert answer['result'] == expected, answer
            return path, len(body)
        assert answer['status'] != 'failed' and time.monotonic() < deadline, answer
        time.sleep(0.05)


def redis_commands(client, url, requests=20):
    """Redis commands per request to ``url`` on ``client``'s database,
    seen by MONITOR over ``requests`` requests in a row (others' use of
    the same Redis does not count, as it would in INFO commandstats)."""
    db = client.connection_pool.connection_kwargs.get('db', 0)
    seen = []
    with client.monitor() as monitor:

        def watch():
            while True:
                command = monitor.next_command()
                if command['command'] == 'ECHO bench-results-end':
                    return
                seen.append(command['db'])

        watcher = threading.Thread(target=watch)
        watcher.start()
        for _ in range(requests):
            urllib.request.urlopen(url).read()
        other = redis.Redis(connection_pool=client.connection_pool)
        other.echo('bench-results-end')
        watcher.join(10)
    return sum(d == db for d in seen) / requests


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=int, default=5)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--connections', type=int, default=32)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--redis-url', default='redis://127.0.0.1:6379/14')
    args = parser.parse_args()
    use_wrk = shutil.which('wrk') is not None

    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    env = dict(os.environ, PYTHONPATH=ROOT)
    inis = {}
    for name, adapter, strategies in (('async', 'async', 'memory redis'), ('rq', 'rq', 'rq')):
        inis[name] = os.path.join(ROOT, 'bench', f'.results-{name}.ini')
        with open(inis[name], 'w') as f:
            f.write(INI.format(adapter=adapter, url=args.redis_url, strategies=strategies))
    servers = {}
    try:
        rows = []  # (label, server, path, answer bytes)
        for name in ('async', 'rq'):
            servers[name] = start_server(inis[name])
        bases = {name: f'http://127.0.0.1:{port}' for name, (_, port) in servers.items()}
        for strategy, server in (('memory', 'async'), ('redis', 'async'), ('rq', 'rq')):
            base = bases[server]
            jobs = {kind: create_job(base, strategy, kind) for kind in ('none', 'result')}
            if strategy == 'rq':  # the worker runs both jobs, then exits
                subprocess.run(
                    [
                        sys.executable,
                        '-m',
                        'pyramid_immortus.worker',
                        inis['rq'],
                        '--burst',
                        '--logging-level',
                        'WARNING',
                    ],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            for kind, label in (('none', 'no result'), ('result', '1 KB result')):
                path, size = finished(base, jobs[kind], kind)
                rows.append((f'{strategy} strategy, {label}', base, path, size))
        per_request = {label: redis_commands(client, base + path) for label, base, path, _ in rows}
        samples = {label: [] for label, *_ in rows}
        for _ in range(args.rounds):
            for label, base, path, _ in rows:
                if use_wrk:
                    rps, p50, p99, errors = wrk(
                        base + path, args.seconds, args.connections, args.threads
                    )
                else:
                    rps, p50, p99, errors = python_load(base + path, args.seconds, args.connections)
                samples[label].append((rps, p50, p99, errors))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
        for path in inis.values():
            os.unlink(path)
    tool = (
        f'wrk: {args.connections} keep-alive connections, {args.threads} threads'
        if use_wrk
        else f'no wrk: {args.connections} Python threads on keep-alive connections'
    )
    print(
        f'{tool}, {args.seconds} s per row, median of {args.rounds} rounds; '
        f'waitress 8 threads; {time.strftime("%Y-%m-%d")}'
    )
    print(
        '| finished job | answer bytes | req/s | p50 ms | p99 ms | non-2xx | Redis cmds/req '
        '| x no result |'
    )
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    baseline = None
    for label, _, _, size in rows:
        columns = list(zip(*samples[label], strict=True))
        rps, p50, p99 = (statistics.median(c) for c in columns[:3])
        if label.endswith('no result'):
            baseline = rps
        print(
            f'| {label} | {size:,} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {sum(columns[3])} '
            f'| {per_request[label]:.2f} | {rps / baseline:.2f} |'
        )


if __name__ == '__main__':
    main()
