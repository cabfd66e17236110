"""``python -m bench.plain_worker REDIS_URL QUEUE [CONFIG_URI]``: plain rq,
burst mode.

The task's module is imported before the worker starts, as
``immortus-worker`` has the application's modules imported when it forks.
With CONFIG_URI, the application is also loaded (and left unused), so that
the worker forks a process of the same size as ``immortus-worker``'s.
"""

import sys

from redis import Redis
from rq import Queue, Worker

import bench.tasks  # noqa: F401

if __name__ == '__main__':
    if len(sys.argv) > 3:
        from pyramid.paster import bootstrap

        bootstrap(sys.argv[3])
    connection = Redis.from_url(sys.argv[1])
    Worker([Queue(sys.argv[2], connection=connection)], connection=connection).work(
        burst=True, logging_level='WARNING'
    )
