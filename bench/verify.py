"""Requests per second and latency of the default verify view, against the
floor and a hand-written rq view, in one run.

    python bench/verify.py [--seconds 8] [--rounds 3] [--connections 32] [--threads 2]

Serves bench/app.py with waitress (8 threads) on loopback and loads it with
wrk (Debian package ``wrk``) using keep-alive connections.  Needs Redis at
``--redis-url`` (default redis://127.0.0.1:6379/14, which it empties).
Rows: the floor (one Redis GET, fixed JSON), the hand-written view
(``rq.job.Job.fetch`` + ``get_status``), and the default verify view on the
``memory``, ``redis`` and ``rq`` strategies; ratios to the floor and to the
hand-written view, and Redis commands per request from INFO commandstats.
The rows run in turn, ``--rounds`` times; each cell is the median.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.app import LOGGING  # noqa: E402

INI = (
    """[app:main]
use = call:bench.app:main
immortus.queue_adapter = rq
immortus.redis_url = {url}
immortus.rq.queue = bench

"""
    + LOGGING
)


def start_server(ini):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        [sys.executable, '-m', 'bench.serve', ini],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith('PORT '):
        proc.kill()
        raise SystemExit(f'the server did not start: {line!r}')
    return proc, int(line.split()[1])


def wrk(url, seconds, connections, threads):
    out = subprocess.run(
        ['wrk', '--latency', '-d', f'{seconds}s', '-c', str(connections), '-t', str(threads), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
    errors = re.search(r'Non-2xx or 3xx responses: (\d+)', out)

    def percentile(p):
        value, unit = re.search(rf'^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$', out, re.M).groups()
        return float(value) * {'us': 0.001, 'ms': 1, 's': 1000}[unit]

    return rps, percentile(50), percentile(99), int(errors.group(1)) if errors else 0


def commands(client):
    stats = client.info('commandstats')
    return sum(v['calls'] for k, v in stats.items() if k not in ('cmdstat_info',))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--connections', type=int, default=32)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--redis-url', default='redis://127.0.0.1:6379/14')
    args = parser.parse_args()

    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    ini = os.path.join(ROOT, 'bench', '.verify.ini')
    with open(ini, 'w') as f:
        f.write(INI.format(url=args.redis_url))
    server, port = start_server(ini)
    base = f'http://127.0.0.1:{port}'
    try:
        ids = {}
        for kind in ('memory', 'redis', 'rq'):
            request = urllib.request.Request(f'{base}/create/{kind}', method='POST')
            ids[kind] = json.load(urllib.request.urlopen(request))['job_id']
        client.set(f'bench:floor:{ids["rq"]}', b'1')
        rows = [
            ('floor: one Redis GET', f'/floor/{ids["rq"]}'),
            ('hand-written Job.fetch view', f'/handwritten/{ids["rq"]}'),
            ('verify, memory strategy', f'/immortus/verify/{ids["memory"]}/MemoryJob'),
            ('verify, redis strategy', f'/immortus/verify/{ids["redis"]}/RedisJob'),
            ('verify, rq strategy', f'/immortus/verify/{ids["rq"]}/RQJob'),
        ]
        for _, path in rows:
            urllib.request.urlopen(base + path).read()  # warm up, check it answers 200
        samples = {label: [] for label, _ in rows}
        for _ in range(args.rounds):
            for label, path in rows:
                client.config_resetstat()
                rps, p50, p99, errors = wrk(
                    base + path, args.seconds, args.connections, args.threads
                )
                per_request = commands(client) / (rps * args.seconds)
                samples[label].append((rps, p50, p99, errors, per_request))
        results = []
        for label, _ in rows:
            columns = list(zip(*samples[label], strict=True))
            results.append(
                (
                    label,
                    statistics.median(columns[0]),
                    statistics.median(columns[1]),
                    statistics.median(columns[2]),
                    sum(columns[3]),
                    statistics.median(columns[4]),
                )
            )
        floor_rps, peer_rps = results[0][1], results[1][1]
        print(
            f'wrk: {args.connections} keep-alive connections, {args.threads} threads, '
            f'{args.seconds} s per row, median of {args.rounds} rounds; waitress 8 threads; '
            f'{time.strftime("%Y-%m-%d")}'
        )
        print(
            '| view | req/s | p50 ms | p99 ms | non-2xx | Redis cmds/req | x floor '
            '| x hand-written |'
        )
        print('|---|---:|---:|---:|---:|---:|---:|---:|')
        for label, rps, p50, p99, errors, per_request in results:
            print(
                f'| {label} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {errors} | '
                f'{per_request:.2f} | {rps / floor_rps:.2f} | {rps / peer_rps:.2f} |'
            )
    finally:
        server.terminate()
        server.wait(10)
        os.unlink(ini)


if __name__ == '__main__':
    main()
