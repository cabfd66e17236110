"""Server push against polling: N streams of the events gateway following M
jobs whose progress changes at a fixed rate, and the same followers polling
the batch verify at 2 Hz.

    python bench/events.py [--streams 10000] [--jobs 100] [--rate 0.2] [--seconds 20]

Everything runs on this machine: Redis (database 10 of 127.0.0.1:6379,
emptied), the gateway (``immortus-events``), waitress serving the batch
verify, a writer of progress (each write carries its time, so the client
measures the delay from the write to its delivery), and the load generator
(asyncio, one process per 2,500 streams).  The file limit is raised here
(ulimit -n), not in the system.
"""
import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDIS_URL = 'redis://127.0.0.1:6379/10'
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
    print(json.dumps({'held_at_end': held, 'errors': stats['errors'], 'latency': latency}),
          flush=True)
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

def start(args, log):
    return subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=ROOT), start_new_session=True)


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


def push_round(tmp, streams, jobs, rate, seconds, client):
    from pyramid_immortus.strategies.redis import RedisStrategy

    client.flushdb()
    strategy = RedisStrategy(client, ttl=3600)
    job_ids = [f'bench-{n}' for n in range(jobs)]
    for job_id in job_ids:
        strategy.job_created(job_id, None, None)
        strategy.job_started(job_id)
    ini = os.path.join(tmp, 'events.ini')
    with open(ini, 'w') as f:
        f.write('[app:main]\nuse = call:tests.integration_app:main\n'
                'immortus.queue_adapter = async\nimmortus.tracking_strategy = redis\n'
                f'immortus.redis_url = {REDIS_URL}\nimmortus.progress_interval = 0\n')
    log = open(os.path.join(tmp, 'gateway.log'), 'w')
    gateway = start([sys.executable, '-m', 'pyramid_immortus.events', ini, '--port', '0',
                     '--log-level', 'warning'], log)
    try:
        line = wait_line(log.name, 'immortus-events: serving', gateway)
        port = int(line.rsplit(':', 1)[1])
        rss_empty = rss(gateway.pid)
        per_client = 2500
        queries = [f'ids={job_ids[n % jobs]}' for n in range(streams)]
        clients = []
        for start_at in range(0, streams, per_client):
            spec = json.dumps(queries[start_at:start_at + per_client])
            clients.append(subprocess.Popen(
                [sys.executable, __file__, '--client', '127.0.0.1', str(port), spec],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                env=dict(os.environ, PYTHONPATH=ROOT), start_new_session=True))
        held = sum(json.loads(c.stdout.readline())['held'] for c in clients)
        halt = threading.Event()
        thread = threading.Thread(target=writer, args=(strategy, job_ids, rate, halt))
        thread.start()
        time.sleep(2)
        for c in clients:
            c.stdin.write('\n')
            c.stdin.flush()
        cpu0, rcpu0, t0 = cpu_seconds(gateway.pid), redis_cpu(client), time.monotonic()
        time.sleep(seconds)
        cpu1, rcpu1, t1 = cpu_seconds(gateway.pid), redis_cpu(client), time.monotonic()
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
        'streams': streams, 'held': held,
        'held_at_end': sum(r['held_at_end'] for r in results),
        'errors': sum(r['errors'] for r in results),
        'rss_per_stream': (rss_full - rss_empty) / max(held, 1),
        'p50': statistics.median(latency) * 1000 if latency else float('nan'),
        'p99': latency[int(len(latency) * 0.99)] * 1000 if latency else float('nan'),
        'deliveries': deliveries,
        'cpu_per_1000': cpu / max(len(latency), 1) * 1000,
        'cpu_per_follower_s': (cpu + rcpu1 - rcpu0) / (t1 - t0) / max(held, 1),
    }


def poll_round(tmp, followers, jobs, seconds, client):
    """``followers`` polling the batch verify of one job each at 2 Hz."""
    from pyramid_immortus.strategies.redis import RedisStrategy

    client.flushdb()
    strategy = RedisStrategy(client, ttl=3600)
    job_ids = [f'bench-{n}' for n in range(jobs)]
    for job_id in job_ids:
        strategy.job_created(job_id, None, None)
        strategy.job_started(job_id)
    ini = os.path.join(tmp, 'web.ini')
    with open(ini, 'w') as f:
        f.write('[app:main]\nuse = call:tests.integration_app:main\n'
                'immortus.queue_adapter = async\nimmortus.tracking_strategy = redis\n'
                f'immortus.redis_url = {REDIS_URL}\n')
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
            request = (f'GET /immortus/verify?ids={job_ids[n % jobs]} HTTP/1.1\r\n'
                       'Host: x\r\n\r\n').encode()
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
            before = (cpu_seconds(web.pid), redis_cpu(client), redis_commands(client),
                      counts['requests'], time.monotonic())
            await asyncio.sleep(seconds)
            after = (cpu_seconds(web.pid), redis_cpu(client), redis_commands(client),
                     counts['requests'], time.monotonic())
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
        'cpu_per_follower_s': (after[0] - before[0] + after[1] - before[1]) / elapsed / followers,
    }


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--client':
        return run_client(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--streams', type=int, default=10000)
    parser.add_argument('--jobs', type=int, default=100)
    parser.add_argument('--rate', type=float, default=0.2,
                        help='progress writes per job per second (default 0.2: with 10,000 '
                             'streams on 100 jobs, 2,000 deliveries/s)')
    parser.add_argument('--seconds', type=float, default=20)
    parser.add_argument('--cpu-streams', type=int, default=1000,
                        help='streams (and pollers) of the CPU comparison at 1 change/s')
    args = parser.parse_args()
    raise_file_limit()
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    with tempfile.TemporaryDirectory() as tmp:
        big = push_round(tmp, args.streams, args.jobs, args.rate, args.seconds, client)
        cmp_push = push_round(tmp, args.cpu_streams, args.cpu_streams, 1.0, args.seconds, client)
        cmp_poll = poll_round(tmp, min(args.cpu_streams, 300), args.cpu_streams, args.seconds,
                              client)
    client.flushdb()
    print(f'\n{time.strftime("%Y-%m-%d")}; {os.cpu_count()} cores; Redis on loopback\n')
    print('| run | streams held | errors | gateway RSS/stream | p50 ms | p99 ms '
          '| deliveries/s | CPU s per 1,000 deliveries |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for name, r in ((f'{args.streams:,} streams, {args.jobs} jobs, {args.rate}/s each', big),
                    (f'{args.cpu_streams:,} streams, 1 job each, 1/s', cmp_push)):
        print(f"| {name} | {r['held']:,} (at end {r['held_at_end']:,}) | {r['errors']} "
              f"| {r['rss_per_stream'] / 1024:.1f} KB | {r['p50']:.1f} | {r['p99']:.1f} "
              f"| {r['deliveries']:,.0f} | {r['cpu_per_1000']:.3f} |")
    print('\n| follower of a job changing 1/s | server CPU ms per follower-second '
          '(gateway or web, + Redis) | requests/s | Redis commands/s | errors |')
    print('|---|---:|---:|---:|---:|')
    print(f"| push (SSE) | {cmp_push['cpu_per_follower_s'] * 1000:.3f} | 0 | - "
          f"| {cmp_push['errors']} |")
    print(f"| polling batch verify at 2 Hz ({cmp_poll['followers']} followers) "
          f"| {cmp_poll['cpu_per_follower_s'] * 1000:.3f} | {cmp_poll['requests_s']:,.0f} "
          f"| {cmp_poll['redis_cmds_s']:,.0f} | {cmp_poll['errors']} |")
    ratio = cmp_poll['cpu_per_follower_s'] / max(cmp_push['cpu_per_follower_s'], 1e-9)
    print(f'\npolling costs {ratio:.1f}x the server CPU of push per follower')


if __name__ == '__main__':
    main()
