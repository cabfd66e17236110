"""Jobs per second through one worker, and the cost of enqueueing, for
pyramid_immortus (rq and redis strategies) against plain rq, in one run.

    python bench/jobs.py [--jobs 500] [--rounds 3] [--redis-url redis://127.0.0.1:6379/14]

Each round enqueues ``--jobs`` trivial jobs per variant (timing each
``perform_later`` or ``Queue.enqueue``), then drains each queue with one
burst worker: ``immortus-worker`` for pyramid_immortus, rq's own ``Worker``
for plain rq, both forking a work horse per job.  Throughput is jobs divided
by the span from the first job's start to the last one's end, as rq records
them.  A second plain-rq row runs a worker that has loaded the same Pyramid
application without using it, to show what forking a process of that size
costs.  Each cell is the median of the rounds.  Empties the Redis database.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from pyramid.config import Configurator
from redis import Redis
from rq import Queue
from rq.job import Job as RQJob
from rq.utils import utcparse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.tasks import trivial  # noqa: E402
from pyramid_immortus import Job  # noqa: E402


class Trivial(Job):
    """The same work as a pyramid_immortus job."""

    def perform(self, n):
        return trivial(n)


INI = """[app:main]
use = call:bench.jobs:make_app
immortus.queue_adapter = rq
immortus.redis_url = {url}
immortus.rq.queue = {queue}
immortus.tracking_strategy = {strategy}
"""


def configure(settings):
    config = Configurator(settings=settings)
    config.include('pyramid_immortus')
    config.add_immortus_job(Trivial)
    config.commit()
    return config


def make_app(global_config, **settings):
    return configure(settings).make_wsgi_app()


def span(connection, ids):
    fields = [connection.hmget(RQJob.key_for(i), 'status', 'started_at', 'ended_at') for i in ids]
    assert all(f[0] == b'finished' for f in fields), 'not every job finished'
    start = min(utcparse(f[1].decode()) for f in fields)
    end = max(utcparse(f[2].decode()) for f in fields)
    return (end - start).total_seconds()


def run(args, env, variant, connection):
    queue = f'bench-{variant}'
    started = time.perf_counter()
    if variant.startswith('plain'):
        q = Queue(queue, connection=connection)
        ids = [q.enqueue(trivial, i).id for i in range(args.jobs)]
        enqueue = time.perf_counter() - started
        worker = [sys.executable, '-m', 'bench.plain_worker', args.redis_url, queue]
        if variant == 'plain-app':
            ini = os.path.join(ROOT, 'bench', '.jobs-plain-app.ini')
            with open(ini, 'w') as f:
                f.write(INI.format(url=args.redis_url, queue=queue, strategy='rq'))
            worker.append(ini)
    else:
        ini = os.path.join(ROOT, 'bench', f'.jobs-{variant}.ini')
        with open(ini, 'w') as f:
            f.write(INI.format(url=args.redis_url, queue=queue, strategy=variant))
        registry = configure(
            {
                'immortus.queue_adapter': 'rq',
                'immortus.redis_url': args.redis_url,
                'immortus.rq.queue': queue,
                'immortus.tracking_strategy': variant,
            }
        ).registry
        started = time.perf_counter()
        ids = [Trivial.perform_later(registry, i).job_id for i in range(args.jobs)]
        enqueue = time.perf_counter() - started
        worker = [
            sys.executable,
            '-m',
            'pyramid_immortus.worker',
            ini,
            '--burst',
            '--logging-level',
            'WARNING',
        ]
    subprocess.run(worker, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return args.jobs / span(connection, ids), enqueue / args.jobs * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--jobs', type=int, default=500)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--redis-url', default='redis://127.0.0.1:6379/14')
    args = parser.parse_args()
    connection = Redis.from_url(args.redis_url)
    env = dict(os.environ, PYTHONPATH=ROOT)
    variants = ('plain', 'plain-app', 'rq', 'redis')
    samples = {v: [] for v in variants}
    try:
        for _ in range(args.rounds):
            for variant in variants:
                connection.flushdb()
                samples[variant].append(run(args, env, variant, connection))
    finally:
        for variant in variants[1:]:
            path = os.path.join(ROOT, 'bench', f'.jobs-{variant}.ini')
            if os.path.exists(path):
                os.unlink(path)
    medians = {v: [statistics.median(c) for c in zip(*samples[v], strict=True)] for v in variants}
    plain_rate, plain_enqueue = medians['plain']
    print(
        f'{args.jobs} trivial jobs per variant, one forking worker, median of '
        f'{args.rounds} rounds; {time.strftime("%Y-%m-%d")}'
    )
    print('| variant | jobs/s | x plain rq | enqueue us/job | x plain rq |')
    print('|---|---:|---:|---:|---:|')
    labels = {
        'plain': 'plain rq (Queue.enqueue + rq Worker)',
        'plain-app': 'plain rq, worker holding the same Pyramid app',
        'rq': 'pyramid_immortus, rq strategy',
        'redis': 'pyramid_immortus, redis strategy',
    }
    for variant in variants:
        rate, enqueue = medians[variant]
        print(
            f'| {labels[variant]} | {rate:,.0f} | {rate / plain_rate:.2f} | '
            f'{enqueue:,.0f} | {enqueue / plain_enqueue:.2f} |'
        )


if __name__ == '__main__':
    main()
