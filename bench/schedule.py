"""How late scheduled jobs and retries start: the time from when a job is
due to the first line of its ``perform``, for jobs enqueued with
``Job.set(wait_until=...)`` and for the second run of a ``retry_on`` job,
under the ``async`` adapter (in this process) and the ``rq`` adapter
(``immortus-worker`` processes, whose rq scheduler moves due jobs to their
queue), in one run.

    python bench/schedule.py [--jobs 200] [--spread 10] [--retries 50] [--rq-workers 1 2]

``--jobs`` scheduled jobs are due at even intervals over ``--spread``
seconds, starting 2 s after they are enqueued (all at once); their
lateness is the start of ``perform`` minus the due time they were given.
``--retries`` jobs with ``@retry_on(..., wait=1)`` are due likewise over
half the spread; each fails its first run, and the lateness of its second
run is its start minus (the moment the first run raised + 1 s).  Each job
writes its times to Redis (``RPUSH``), so that the work horses of rq can
report them.  ``rq`` runs once per number of workers in ``--rq-workers``.
Needs Redis at ``--redis-url`` (default redis://127.0.0.1:6379/14, which it
empties).
"""

import argparse
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import time

import redis
from pyramid.config import Configurator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.app import LOGGING  # noqa: E402
from pyramid_immortus import Job, retry_on  # noqa: E402
from pyramid_immortus.connection import get_redis  # noqa: E402

#: Seconds a retried job waits before its second run.
WAIT = 1
#: Seconds from the enqueue of the jobs to the first one's due time.
LEAD = 2
KEY = 'bench:schedule:times'


class Flaky(Exception):
    """What a first run raises."""


class Stamp(Job):
    """Writes when it started."""

    def perform(self):
        get_redis(self.registry).rpush(KEY, f'{self.job_id} start {self.attempt} {time.time()!r}')


@retry_on(Flaky, attempts=2, wait=WAIT)
class FlakyStamp(Job):
    """Writes when it started; its first run writes when it raised, and
    raises."""

    def perform(self):
        connection = get_redis(self.registry)
        connection.rpush(KEY, f'{self.job_id} start {self.attempt} {time.time()!r}')
        if self.attempt == 1:
            connection.rpush(KEY, f'{self.job_id} raise {self.attempt} {time.time()!r}')
            raise Flaky('the first run fails')


def configure(settings):
    config = Configurator(settings=settings)
    config.include('pyramid_immortus')
    config.add_immortus_job(Stamp)
    config.add_immortus_job(FlakyStamp)
    config.commit()
    return config


def make_app(global_config, **settings):
    """The application of the rq workers."""
    return configure(settings).make_wsgi_app()


INI = (
    """[app:main]
use = call:bench.schedule:make_app
immortus.queue_adapter = rq
immortus.redis_url = {url}
immortus.rq.queue = bench-schedule

"""
    + LOGGING
)


def times(client):
    """``{(job_id, event, attempt): time}`` from what the jobs wrote."""
    found = {}
    for line in client.lrange(KEY, 0, -1):
        job_id, event, attempt, moment = line.decode().split()
        found[(job_id, event, int(attempt))] = float(moment)
    return found


def enqueue_spread(registry, job_class, count, spread):
    """``count`` jobs due at even intervals over ``spread`` seconds from
    ``LEAD`` seconds from now; ``{job_id: due}``."""
    first = time.time() + LEAD
    due = {}
    for i in range(count):
        when = dt.datetime.fromtimestamp(first + spread * i / count, dt.timezone.utc)
        job = job_class.set(wait_until=when).perform_later(registry)
        due[job.job_id] = job.scheduled_at
    return due


def wait_for(client, keys, timeout):
    deadline = time.monotonic() + timeout
    while True:
        found = times(client)
        if all(key in found for key in keys):
            return found
        if time.monotonic() > deadline:
            missing = [key for key in keys if key not in found]
            raise SystemExit(f'{len(missing)} jobs never started, e.g. {missing[:3]}')
        time.sleep(0.2)


def measure(registry, client, args):
    """``(scheduled lateness, retry lateness)``, in seconds."""
    client.delete(KEY)
    due = enqueue_spread(registry, Stamp, args.jobs, args.spread)
    found = wait_for(client, [(j, 'start', 1) for j in due], LEAD + args.spread + 30)
    scheduled = [found[(j, 'start', 1)] - due[j] for j in due]
    client.delete(KEY)
    due = enqueue_spread(registry, FlakyStamp, args.retries, args.spread / 2)
    found = wait_for(client, [(j, 'start', 2) for j in due], LEAD + args.spread / 2 + WAIT + 30)
    retries = [found[(j, 'start', 2)] - (found[(j, 'raise', 1)] + WAIT) for j in due]
    return scheduled, retries


def start_workers(ini, count, client):
    env = dict(os.environ, PYTHONPATH=ROOT)
    workers = [
        subprocess.Popen(
            [sys.executable, '-m', 'pyramid_immortus.worker', ini, '--logging-level', 'WARNING'],
            cwd=ROOT,
            env=env,
            # rq logs each first run's failure with its traceback
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    deadline = time.monotonic() + 30
    # ready once registered with rq (rq:workers), and one holds the scheduler's lock
    while len(client.smembers('rq:workers')) < count or not client.keys('rq:scheduler-lock:*'):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            stop_workers(workers)
            raise SystemExit('immortus-worker did not start')
        time.sleep(0.1)
    return workers


def stop_workers(workers):
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--jobs', type=int, default=200)
    parser.add_argument('--spread', type=float, default=10.0)
    parser.add_argument('--retries', type=int, default=50)
    parser.add_argument('--rq-workers', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--redis-url', default='redis://127.0.0.1:6379/14')
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    results = []

    registry = configure(
        {
            'immortus.queue_adapter': 'async',
            'immortus.redis_url': args.redis_url,
            'immortus.async_workers': '4',
        }
    ).registry
    results.append(('async (4 threads of this process)', *measure(registry, client, args)))

    ini = os.path.join(ROOT, 'bench', '.schedule.ini')
    with open(ini, 'w') as f:
        f.write(INI.format(url=args.redis_url))
    try:
        registry = configure(
            {
                'immortus.queue_adapter': 'rq',
                'immortus.redis_url': args.redis_url,
                'immortus.rq.queue': 'bench-schedule',
            }
        ).registry
        for count in args.rq_workers:
            client.flushdb()
            workers = start_workers(ini, count, client)
            try:
                label = f'rq ({count} immortus-worker{"s" if count > 1 else ""})'
                results.append((label, *measure(registry, client, args)))
            finally:
                stop_workers(workers)
    finally:
        os.unlink(ini)

    print(
        f'{args.jobs} scheduled jobs due over {args.spread:g} s, {args.retries} retried jobs '
        f'(retry_on wait={WAIT}) over {args.spread / 2:g} s; lateness = start of perform - due '
        f'time; {time.strftime("%Y-%m-%d")}'
    )
    print('| adapter | jobs | p50 ms | p99 ms | max ms |')
    print('|---|---|---:|---:|---:|')
    for label, scheduled, retries in results:
        for what, values in (('scheduled', scheduled), ('retry after wait=1', retries)):
            values = sorted(values)
            p50 = statistics.median(values) * 1000
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
            print(
                f'| {label} | {len(values)} {what} | {p50:,.1f} | {p99:,.1f} | '
                f'{values[-1] * 1000:,.1f} |'
            )


if __name__ == '__main__':
    main()
