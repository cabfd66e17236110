"""Server push against polling: N streams of the events gateway following M
jobs whose progress changes at a fixed rate, and the same followers polling
the batch verify at 2 Hz.

    python bench/events.py [--streams 10000] [--jobs 100] [--rate 0.2] [--seconds 20]

Everything runs on this machine: a redis-server of the bench's own (on a
free port of 127.0.0.1, so that no other client's commands are billed to
either side; ``--redis-url`` to use another, emptied), the gateway
(``immortus-events``), waitress serving the batch verify, a writer of
progress (each write carries its time, so the client measures the delay
from the write to its delivery), and the load generator (asyncio, one
process per 2,500 streams).  The file limit is raised here (ulimit -n), not
in the system.

The CPU comparison gives each follower a job of its own that changes once a
second, in both modes (the same writes per follower), and bills the server
side: the gateway (push) or waitress (polling), plus Redis.
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HZ = os.sysconf('SC_CLK_TCK')


def raise_file_limit(want=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, want), hard), hard))


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def rss(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    return 0


def redis_cpu(client):
    info = client.info('cpu')
    return info['used_cpu_sys'] + info['used_cpu_user']


def redis_commands(client):
    return client.info('stats')['total_commands_processed']


# -- the load generator (a subprocess) ---------------------------------------


async def follow(host, port, query, opened, stats, stop):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        stats['errors'] += 1
        return
    writer.write(f'GET /immortus/events?{query} HTTP/1.1\r\nHost: {host}\r\n\r\n'.encode())
    try:
        status = await reader.readline()
        if b' 200 ' not in status:
            stats['errors'] += 1
            return
        opened.append(1)
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                if not stop.is_set():
                    stats['errors'] += 1
                return
            if line.startswith(b'data: {'):
                data = json.loads(line[6:])
                progress = data.get('progress')
                if progress and progress.get('message') and stats['measuring']:
                    stats['latency'].append(time.time() - float(progress['message']))
    except (OSError, ValueError):
        stats['errors'] += 1
    finally:
        writer.close()


async def client_main(host, port, queries, hold):
    stop = asyncio.Event()
    opened, stats = [], {'errors': 0, 'latency': [], 'measuring': False}
    tasks = []
    for n, query in enumerate(queries):
        tasks.append(asyncio.ensure_future(follow(host, port, query, opened, stats, stop)))
        if n % 100 == 99:
            await asyncio.sleep(0.02)
    while len(opened) + stats['errors'] < len(queries):
        await asyncio.sleep(0.1)
    print(json.dumps({'held': len(opened)}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # measure
    stats['measuring'] = True
    stats['latency'] = []
    await loop.run_in_executor(None, sys.stdin.readline)  # stop
    stats['measuring'] = False
    held = sum(1 for t in tasks if not t.done())
    latency = stats['latency']
    print(
        json.dumps({'held_at_end': held, 'errors': stats['errors'], 'latency': latency}), flush=True
    )
    stop.set()
    for task in tasks:
        task.cancel()


def run_client(argv):
    raise_file_limit()
    host, port, spec = argv[0], int(argv[1]), json.loads(argv[2])
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(client_main(host, port, spec, None))


# -- the run ------------------------------------------------------------------


def child_env():
    """The environment of the processes started here: this checkout first
    on ``PYTHONPATH``."""
    path = [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path))


def start(args, log):
    return subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=child_env(),
        start_new_session=True,
    )


def wait_line(path, prefix, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in open(path):
            if line.startswith(prefix):
                return line
        if proc.poll() is not None:
            raise RuntimeError(open(path).read())
        time.sleep(0.1)
    raise RuntimeError(f'no {prefix!r} in {path}')


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def writer(strategy, job_ids, rate, halt):
    """Progress of every job ``rate`` times a second, spread evenly; the
    message is the time of the write."""
    interval = 1.0 / (rate * len(job_ids))
    step = 0
    next_at = time.monotonic()
    while not halt.is_set():
        job_id = job_ids[step % len(job_ids)]
        strategy.job_progress(job_id, step, None, repr(time.time()))
        step += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def private_redis(tmp):
    """``(process, URL)`` of a redis-server of this run's own."""
    import redis

    port = free_port()
    proc = subprocess.Popen(
        [
            'redis-server',
            '--port',
            str(port),
            '--bind',
            '127.0.0.1',
            '--save',
            '',
            '--appendonly',
            'no',
            '--dir',
            tmp,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc, f'redis://127.0.0.1:{port}/0'
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError('redis-server did not start') from None
            time.sleep(0.05)
        finally:
            client.close()


def started_jobs(tmp, name, jobs, client, redis_url, extra=''):
    """Empty the bench database, start ``jobs`` jobs in the ``redis``
    strategy, and write the .ini ``name`` of the integration app on it:
    ``(strategy, job ids, ini path)``."""
    from pyramid_immortus.strategies.redis import RedisStrategy

    client.flushdb()
    strategy = RedisStrategy(client, ttl=3600)
    job_ids = [f'bench-{n}' for n in range(jobs)]
    for job_id in job_ids:
        strategy.job_created(job_id, None, None)
        strategy.job_started(job_id)
    ini = os.path.join(tmp, name)
    with open(ini, 'w') as f:
        f.write(
            '[app:main]\nuse = call:tests.integration_app:main\n'
            'immortus.queue_adapter = async\nimmortus.tracking_strategy = redis\n'
            f'immortus.redis_url = {redis_url}\n{extra}'
        )
    return strategy, job_ids, ini


def push_round(tmp, streams, jobs, rate, seconds, client, redis_url):
    strategy, job_ids, ini = started_jobs(
        tmp, 'events.ini', jobs, client, redis_url, 'immortus.progress_interval = 0\n'
    )
    log = open(os.path.join(tmp, 'gateway.log'), 'w')
    gateway = start(
        [
            sys.executable,
            '-m',
            'pyramid_immortus.events',
            ini,
            '--port',
            '0',
            '--log-level',
            'warning',
        ],
        log,
    )
    try:
        line = wait_line(log.name, 'immortus-events: serving', gateway)
        port = int(line.rsplit(':', 1)[1])
        rss_empty = rss(gateway.pid)
        per_client = 2500
        queries = [f'ids={job_ids[n % jobs]}' for n in range(streams)]
        clients = []
        for start_at in range(0, streams, per_client):
            spec = json.dumps(queries[start_at : start_at + per_client])
            clients.append(
                subprocess.Popen(
                    [sys.executable, __file__, '--client', '127.0.0.1', str(port), spec],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                    env=child_env(),
                    start_new_session=True,
                )
            )
        held = sum(json.loads(c.stdout.readline())['held'] for c in clients)
        halt = threading.Event()
        thread = threading.Thread(target=writer, args=(strategy, job_ids, rate, halt))
        thread.start()
        time.sleep(2)
        for c in clients:
            c.stdin.write('\n')
            c.stdin.flush()
        cpu0, rcpu0, rcmd0, t0 = (
            cpu_seconds(gateway.pid),
            redis_cpu(client),
            redis_commands(client),
            time.monotonic(),
        )
        time.sleep(seconds)
        cpu1, rcpu1, rcmd1, t1 = (
            cpu_seconds(gateway.pid),
            redis_cpu(client),
            redis_commands(client),
            time.monotonic(),
        )
        rss_full = rss(gateway.pid)
        for c in clients:
            c.stdin.write('\n')
            c.stdin.flush()
        results = [json.loads(c.stdout.readline()) for c in clients]
        halt.set()
        thread.join()
        for c in clients:
            c.wait(30)
    finally:
        stop(gateway)
    latency = sorted(x for r in results for x in r['latency'])
    deliveries = len(latency) / (t1 - t0)
    cpu = cpu1 - cpu0
    return {
        'streams': streams,
        'held': held,
        'held_at_end': sum(r['held_at_end'] for r in results),
        'errors': sum(r['errors'] for r in results),
        'rss_per_stream': (rss_full - rss_empty) / max(held, 1),
        'p50': statistics.median(latency) * 1000 if latency else float('nan'),
        'p99': latency[int(len(latency) * 0.99)] * 1000 if latency else float('nan'),
        'deliveries': deliveries,
        'cpu_per_1000': cpu / max(len(latency), 1) * 1000,
        'server_per_follower_s': cpu / (t1 - t0) / max(held, 1),
        'redis_per_follower_s': (rcpu1 - rcpu0) / (t1 - t0) / max(held, 1),
        'redis_cmds_s': (rcmd1 - rcmd0) / (t1 - t0),
    }


def poll_round(tmp, followers, jobs, seconds, client, redis_url):
    """``followers`` polling the batch verify of one job each at 2 Hz (the
    same ini as the gateway's: the integration app, its batch verify)."""
    strategy, job_ids, ini = started_jobs(tmp, 'web.ini', jobs, client, redis_url)
    log = open(os.path.join(tmp, 'web.log'), 'w')
    web = start([sys.executable, '-m', 'bench.serve', ini], log)
    try:
        port = int(wait_line(log.name, 'PORT ', web).split()[1])
        halt = threading.Event()
        thread = threading.Thread(target=writer, args=(strategy, job_ids, 1.0, halt))
        thread.start()
        counts = {'requests': 0, 'errors': 0}

        async def poller(n):
            reader, writer_ = await asyncio.open_connection('127.0.0.1', port)
            request = (
                f'GET /immortus/verify?ids={job_ids[n % jobs]} HTTP/1.1\r\nHost: x\r\n\r\n'
            ).encode()
            await asyncio.sleep(n * 0.5 / followers)
            while not halt.is_set():
                began = time.monotonic()
                writer_.write(request)
                head = await reader.readuntil(b'\r\n\r\n')
                length = int(head.lower().split(b'content-length: ')[1].split(b'\r\n')[0])
                await reader.readexactly(length)
                counts['requests'] += 1
                if b' 200 ' not in head.split(b'\r\n')[0]:
                    counts['errors'] += 1
                await asyncio.sleep(max(0, 0.5 - (time.monotonic() - began)))
            writer_.close()

        async def run():
            tasks = [asyncio.ensure_future(poller(n)) for n in range(followers)]
            await asyncio.sleep(2)
            before = (
                cpu_seconds(web.pid),
                redis_cpu(client),
                redis_commands(client),
                counts['requests'],
                time.monotonic(),
            )
            await asyncio.sleep(seconds)
            after = (
                cpu_seconds(web.pid),
                redis_cpu(client),
                redis_commands(client),
                counts['requests'],
                time.monotonic(),
            )
            halt.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            return before, after

        before, after = asyncio.run(run())
        thread.join()
    finally:
        stop(web)
    elapsed = after[4] - before[4]
    return {
        'followers': followers,
        'requests_s': (after[3] - before[3]) / elapsed,
        'redis_cmds_s': (after[2] - before[2]) / elapsed,
        'errors': counts['errors'],
        'server_per_follower_s': (after[0] - before[0]) / elapsed / followers,
        'redis_per_follower_s': (after[1] - before[1]) / elapsed / followers,
    }


def total_cpu(r):
    """Server CPU seconds per follower-second: the gateway's or waitress's,
    plus Redis's."""
    return r['server_per_follower_s'] + r['redis_per_follower_s']


def cpu_row(name, r, requests_s):
    server, db = r['server_per_follower_s'] * 1000, r['redis_per_follower_s'] * 1000
    return (
        f'| {name} | {server + db:.3f} | {server:.3f} | {db:.3f} | {requests_s} '
        f'| {r["redis_cmds_s"]:,.0f} | {r["errors"]} |'
    )


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--client':
        return run_client(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--streams', type=int, default=10000)
    parser.add_argument('--jobs', type=int, default=100)
    parser.add_argument(
        '--rate',
        type=float,
        default=0.2,
        help='progress writes per job per second (default 0.2: with 10,000 '
        'streams on 100 jobs, 2,000 deliveries/s)',
    )
    parser.add_argument('--seconds', type=float, default=20)
    parser.add_argument(
        '--cpu-streams', type=int, default=1000, help='streams of the CPU comparison at 1 change/s'
    )
    parser.add_argument(
        '--pollers',
        type=int,
        default=300,
        help='pollers of the CPU comparison (default 300: about 600 requests/s)',
    )
    parser.add_argument(
        '--rounds', default='big,push,poll', help='which rounds to run (default big,push,poll)'
    )
    parser.add_argument(
        '--redis-url',
        help='an existing Redis database to use (it is emptied); '
        "default: a redis-server of the bench's own",
    )
    args = parser.parse_args()
    rounds = set(args.rounds.split(','))
    raise_file_limit()
    import redis

    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if args.redis_url is None:
            if shutil.which('redis-server') is None:
                sys.exit('redis-server is not installed: pass --redis-url')
            server, redis_url = private_redis(tmp)
        else:
            redis_url = args.redis_url
        client = redis.Redis.from_url(redis_url)
        try:
            client.ping()
            big = cmp_push = cmp_poll = None
            if 'big' in rounds:
                big = push_round(
                    tmp, args.streams, args.jobs, args.rate, args.seconds, client, redis_url
                )
            if 'push' in rounds:
                cmp_push = push_round(
                    tmp, args.cpu_streams, args.cpu_streams, 1.0, args.seconds, client, redis_url
                )
            if 'poll' in rounds:
                cmp_poll = poll_round(
                    tmp, args.pollers, args.pollers, args.seconds, client, redis_url
                )
            client.flushdb()
        finally:
            if server is not None:
                stop(server)
    where = 'a redis-server of its own' if server is not None else redis_url
    print(f'\n{time.strftime("%Y-%m-%d")}; {os.cpu_count()} cores; Redis: {where}\n')
    print(
        '| run | streams held | errors | gateway RSS/stream | p50 ms | p99 ms '
        '| deliveries/s | CPU s per 1,000 deliveries |'
    )
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for name, r in (
        (f'{args.streams:,} streams, {args.jobs} jobs, {args.rate}/s each', big),
        (f'{args.cpu_streams:,} streams, 1 job each, 1/s', cmp_push),
    ):
        if r is not None:
            print(
                f'| {name} | {r["held"]:,} (at end {r["held_at_end"]:,}) | {r["errors"]} '
                f'| {r["rss_per_stream"] / 1024:.1f} KB | {r["p50"]:.1f} | {r["p99"]:.1f} '
                f'| {r["deliveries"]:,.0f} | {r["cpu_per_1000"]:.3f} |'
            )
    print(
        '\n| follower of its own job, changing 1/s | server CPU ms per follower-second '
        '| gateway or web | Redis | requests/s | Redis commands/s | errors |'
    )
    print('|---|---:|---:|---:|---:|---:|---:|')
    if cmp_push is not None:
        print(cpu_row(f'push (SSE, {cmp_push["held"]:,} streams)', cmp_push, 0))
    if cmp_poll is not None:
        print(
            cpu_row(
                f'polling the batch verify at 2 Hz ({cmp_poll["followers"]} followers)',
                cmp_poll,
                f'{cmp_poll["requests_s"]:,.0f}',
            )
        )
    if cmp_push is not None and cmp_poll is not None:
        ratio = total_cpu(cmp_poll) / max(total_cpu(cmp_push), 1e-9)
        print(f'\npolling costs {ratio:.1f}x the server CPU of push per follower')


if __name__ == '__main__':
    main()
