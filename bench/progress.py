"""What ``self.progress`` costs in a tight loop, against the bare loop.

    python bench/progress.py [N]

Runs a job that calls ``self.progress(i, N)`` N times (default 1,000,000)
through the ``redis`` strategy on a real Redis (``immortus.redis_url``,
default redis://localhost:6379/0), and the same loop calling a method that
does nothing, in one run. Prints the time per call, the ratio, and how many
writes reached Redis.
"""

import sys
import time

from pyramid.config import Configurator

from pyramid_immortus import Job, get_settings
from pyramid_immortus.catalog import find_tracking_strategy

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000


class Tight(Job):
    def perform(self, n):
        for i in range(n):
            self.progress(i + 1, n)


class Bare(Job):
    def nothing(self, current, total=None, message=None):
        pass

    def perform(self, n):
        for i in range(n):
            self.nothing(i + 1, n)


class Counting:
    """Wraps the strategy to count the writes that reach it."""

    def __init__(self, inner):
        self.inner = inner
        self.writes = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def job_progress(self, *args):
        self.writes += 1
        self.inner.job_progress(*args)


def main():
    config = Configurator(
        settings={'immortus.queue_adapter': 'inline', 'immortus.tracking_strategy': 'redis'}
    )
    config.include('pyramid_immortus')
    config.add_immortus_job(Tight)
    config.add_immortus_job(Bare)
    config.commit()
    registry = config.registry
    counting = Counting(find_tracking_strategy(registry))
    Tight.tracking_strategy = property(lambda self: counting)
    timings = {}
    for job in (Bare, Tight):
        started = time.perf_counter()
        job.perform_now(registry, N)
        timings[job.__name__] = time.perf_counter() - started
    bare, tight = timings['Bare'], timings['Tight']
    interval = get_settings(registry).progress_interval
    print(
        f'{N:,} calls in one job, redis strategy, progress_interval {interval} s; '
        f'{time.strftime("%Y-%m-%d")}'
    )
    print('| loop | total s | ns/call | x bare | Redis writes |')
    print('|---|---:|---:|---:|---:|')
    print(f'| bare method call | {bare:.3f} | {bare / N * 1e9:.0f} | 1.00 | 0 |')
    print(
        f'| self.progress (throttled) | {tight:.3f} | {tight / N * 1e9:.0f} | '
        f'{tight / bare:.2f} | {counting.writes} |'
    )


if __name__ == '__main__':
    main()
