"""``immortus-worker CONFIG_URI``: an rq worker inside the Pyramid app.

The worker boots the application from its ``.ini`` with
:func:`pyramid.paster.bootstrap`, so jobs run with the application's
registry, settings and strategies, then works on the configured Redis and
queues.  SIGTERM (or one SIGINT) lets the current job finish and stops;
a second SIGINT stops at once (rq's warm and cold shutdown).
"""

import argparse
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
import threading
import time

from pyramid.paster import bootstrap, setup_logging
from rq import Queue, Worker
from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.scheduler import RQScheduler
from rq.worker import base as rq_worker_base

from .adapters.rq import ImmortusRQJob
from .callbacks import notify
from .connection import UNAVAILABLE, get_redis
from .exceptions import Cancelled, failure
from .settings import get_settings
from .strategies.rq import RQ_LEASE_GRACE

#: Linux's ``prctl`` option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1

#: rq's states of a job whose work horse recorded its end.
ENDED_BY_RQ = (JobStatus.FINISHED, JobStatus.FAILED)


def failure_of(exc_string, stopped):
    """An exception that stands for a failure rq reports as text (the job
    failed before ``Job.run`` could record it, or its work horse died)."""
    if stopped:
        return Cancelled('the job was stopped on request')
    if exc_string.startswith('Work-horse terminated unexpectedly'):
        kind, message = 'WorkerLost', exc_string.strip().rstrip(';')
    else:
        lines = [line for line in exc_string.strip().splitlines() if line.strip()]
        kind, _, message = (lines[-1] if lines else 'JobFailed').partition(':')
        kind = kind.strip().rpartition('.')[2] or 'JobFailed'
        if not kind.isidentifier():
            kind, message = 'JobFailed', lines[-1]
    return failure(kind, message.strip())


class ImmortusWorker(Worker):
    """rq's forking worker, with jobs that record heartbeat deadlines.

    ``lease_grace`` is what rq adds to ``job_monitoring_interval`` to get
    the time after which a job without heartbeats has lost its worker (60
    seconds in rq).
    """

    job_class = ImmortusRQJob
    lease_grace = RQ_LEASE_GRACE

    def fork_work_horse(self, job, queue):
        """Fork as rq does, with the application's objects frozen out of the
        garbage collector first, so that the work horse's collections do not
        walk (and copy, page by page) the whole application."""
        gc.freeze()
        return super().fork_work_horse(job, queue)

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        """rq's bookkeeping after ``perform``; the job's last heartbeat then
        extends no lease."""
        job.execution_ended = True
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def get_heartbeat_ttl(self, job, working_time=0.0):
        """rq's heartbeat TTL with ``lease_grace`` in place of its 60 s."""
        return super().get_heartbeat_ttl(job, working_time) - RQ_LEASE_GRACE + self.lease_grace

    def _handle_stopped_job(self, job, queue, execution):
        """rq marks a job it was asked to stop as stopped, even when its work
        horse had already recorded its end before the stop killed it: an
        ended job keeps its end (the horse is dead, nothing writes after
        this check)."""
        if job.get_status(refresh=True) in ENDED_BY_RQ:
            self._stopped_job_id = None
            return
        super()._handle_stopped_job(job, queue, execution)

    def handle_job_failure(
        self, job, queue, started_job_registry=None, exc_string='', execution=None
    ):
        """rq's bookkeeping of a failed job, then the job's strategy learns
        of the failure too: one that came before ``Job.run`` (a class this
        worker does not know, arguments that do not unpickle), a work horse
        that died, a stop on request.  A strategy that recorded the job's end
        already keeps it (an ended state never changes)."""
        stopped = getattr(self, '_stopped_job_id', None) == job.id
        if stopped or not job.should_retry:  # a retry was recorded by the run itself
            failure = failure_of(exc_string or '', stopped)
            for strategy in job.tracking_strategies():  # first: the rq strategy
                notify(strategy, 'job_failed', job.id, failure)  # refuses it once rq says failed
        super().handle_job_failure(
            job,
            queue,
            started_job_registry=started_job_registry,
            exc_string=exc_string,
            execution=execution,
        )

    def main_work_horse(self, job, queue):
        """The work horse dies with its worker (Linux), so that a job whose
        worker was killed does not run on unseen after its lease ran out."""
        die_with_parent(self.pid)
        super().main_work_horse(job, queue)

    def _start_scheduler(self, burst=False, logging_level='INFO', *args, **kwargs):
        """rq's scheduler, in a process that dies with its worker (rq forks
        it; one that outlives a killed worker keeps taking jobs on the dead
        worker's connection)."""
        with patched_scheduler_class():
            super()._start_scheduler(burst, logging_level, *args, **kwargs)

    def work(self, *args, **kwargs):
        """rq's work loop, beside a thread that puts back in their queue the
        jobs that a dead worker had taken but not started."""
        threading.Thread(
            target=self._recover_taken_jobs, daemon=True, name='immortus-recovery'
        ).start()
        return super().work(*args, **kwargs)

    def _recover_taken_jobs(self):
        lease = self.job_monitoring_interval + self.lease_grace
        while True:
            try:
                for queue in self.queues:
                    recover_taken_jobs(self.connection, queue, lease)
                take_over_scheduling(self)
            except UNAVAILABLE:
                pass  # the work loop meets the outage too, and says so
            except Exception:
                self.log.exception('recovering taken jobs failed')
            time.sleep(self.job_monitoring_interval)


#: Put a job that a worker took from its queue (rq keeps it in the queue's
#: "intermediate" list until the worker starts it) back in its queue once it
#: has been seen there, not started, for a lease: its worker died between
#: taking and starting it.  KEYS: intermediate list, queue, job hash, the
#: sightings.  ARGV: job id, now, lease.  Returns 1 when put back.
RECOVER = """
if redis.call('hget', KEYS[3], 'status') ~= 'queued' then
  redis.call('zrem', KEYS[4], ARGV[1])
  return 0
end
local seen = redis.call('zscore', KEYS[4], ARGV[1])
if not seen then
  redis.call('zadd', KEYS[4], ARGV[2], ARGV[1])
  return 0
end
if tonumber(ARGV[2]) - tonumber(seen) < tonumber(ARGV[3]) then return 0 end
redis.call('zrem', KEYS[4], ARGV[1])
if redis.call('lrem', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('lpush', KEYS[2], ARGV[1])
return 1
"""


def recover_taken_jobs(connection, queue, lease):
    """Apply :data:`RECOVER` to every job in ``queue``'s intermediate
    list; return the ids put back."""
    script = connection.register_script(RECOVER)
    intermediate = queue.intermediate_queue_key
    seen = f'immortus:taken:{queue.name}'
    recovered = []
    for raw in connection.lrange(intermediate, 0, -1):
        job_id = raw.decode()
        if script(
            keys=[intermediate, queue.key, RQJob.key_for(job_id), seen],
            args=[job_id, time.time(), lease],
        ):
            recovered.append(job_id)
    if recovered:
        logging.getLogger(__name__).warning(
            'put back in %s the jobs a dead worker had taken: %s', queue.name, ', '.join(recovered)
        )
    return recovered


#: Our schedulers (a set), and the key a live one refreshes every beat.
SCHEDULERS = 'immortus:schedulers'
SCHEDULER_ALIVE = 'immortus:scheduler-alive:'

#: Free the lock of one of our schedulers that stopped beating, so that a
#: live worker's scheduler takes the queue over within seconds, not rq's
#: minute.  KEYS: the lock, our schedulers.  ARGV: the alive-key prefix.
FREE_LOCK = """
local holder = redis.call('get', KEYS[1])
if not holder or redis.call('sismember', KEYS[2], holder) == 0 then return 0 end
if redis.call('exists', ARGV[1] .. holder) == 1 then return 0 end
redis.call('del', KEYS[1])
redis.call('srem', KEYS[2], holder)
return 1
"""


class ImmortusScheduler(RQScheduler):
    """rq's scheduler, whose process dies with the worker that forked it,
    and whose beats say it lives (see :data:`FREE_LOCK`)."""

    def start(self):
        self._parent_pid = os.getpid()
        return super().start()

    def work(self):
        die_with_parent(self._parent_pid)
        super().work()

    def heartbeat(self):
        super().heartbeat()
        with self.connection.pipeline() as pipe:
            pipe.sadd(SCHEDULERS, self.name)
            pipe.set(SCHEDULER_ALIVE + self.name, '1', ex=self.interval * 3)
            pipe.execute()


def take_over_scheduling(worker):
    """Free the locks of our dead schedulers on ``worker``'s queues, and
    start its scheduler on the queues it can then lock."""
    scheduler = getattr(worker, 'scheduler', None)
    if scheduler is None:
        return
    free = worker.connection.register_script(FREE_LOCK)
    for queue in worker.queues:
        free(keys=[RQScheduler.get_locking_key(queue.name), SCHEDULERS], args=[SCHEDULER_ALIVE])
    process = scheduler._process
    if process is None or not process.is_alive():
        scheduler.acquire_locks(auto_start=True)


@contextlib.contextmanager
def patched_scheduler_class():
    """rq's worker builds its scheduler from a name of its module: make that
    :class:`ImmortusScheduler` for the call."""
    original = rq_worker_base.RQScheduler
    rq_worker_base.RQScheduler = ImmortusScheduler  # type: ignore[misc]
    try:
        yield
    finally:
        rq_worker_base.RQScheduler = original  # type: ignore[misc]


def die_with_parent(parent_pid):
    """Ask Linux to SIGKILL this process when its parent dies (nothing
    elsewhere); if the parent is gone already, die now."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        os._exit(1)


def make_worker(
    registry,
    queues=None,
    name=None,
    job_monitoring_interval=DEFAULT_JOB_MONITORING_INTERVAL,
    lease_grace=RQ_LEASE_GRACE,
    worker_class=ImmortusWorker,
):
    """Build a worker for the application of ``registry``.

    ``queues`` defaults to ``immortus.rq.queue``.  The worker shares the
    application's connection pool with its strategies, so that a work horse
    opens one connection, not two (rq raises the pool's socket timeout above
    its blocking reads' own).
    """
    settings = get_settings(registry)
    connection = get_redis(registry)
    names = queues or [settings.rq_queue]
    worker = worker_class(
        [Queue(q, connection=connection, job_class=ImmortusRQJob) for q in names],
        connection=connection,
        name=name,
        job_monitoring_interval=job_monitoring_interval,
        default_result_ttl=settings.result_ttl,
    )
    worker.lease_grace = lease_grace
    return worker


def seconds(minimum, maximum=86400):
    """An argparse type: a whole number of seconds from ``minimum`` to
    ``maximum``."""

    def convert(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f'{value} is not from {minimum} to {maximum}')
        return value

    return convert


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='immortus-worker',
        description='Run pyramid_immortus jobs from rq queues, inside the '
        'Pyramid application configured by CONFIG_URI.',
    )
    parser.add_argument('config_uri', help='the .ini file, e.g. production.ini')
    parser.add_argument(
        '--queue',
        '-q',
        action='append',
        dest='queues',
        metavar='NAME',
        help='a queue to work on (repeatable; default: immortus.rq.queue)',
    )
    parser.add_argument('--burst', '-b', action='store_true', help='stop once the queues are empty')
    parser.add_argument('--name', '-n', help='the worker name rq shows')
    parser.add_argument(
        '--job-monitoring-interval',
        type=seconds(1),
        default=DEFAULT_JOB_MONITORING_INTERVAL,
        metavar='SECONDS',
        help="heartbeat interval (default 30); a dead worker's job reads failed after this + 60 s",
    )
    parser.add_argument(
        '--lease-grace',
        type=seconds(1),
        default=RQ_LEASE_GRACE,
        metavar='SECONDS',
        help='added to the heartbeat interval to declare a silent worker dead (default 60, as rq)',
    )
    parser.add_argument(
        '--no-scheduler',
        action='store_true',
        help="do not run rq's scheduler here (scheduled jobs and retry "
        'waits then need one that runs elsewhere)',
    )
    parser.add_argument('--logging-level', default='INFO')
    return parser.parse_args(argv)


def main(argv=None):
    """The ``immortus-worker`` console script.  A Redis outage does not end
    it: it waits for Redis and works again."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.config_uri)
    env = bootstrap(args.config_uri)
    log = logging.getLogger(__name__)
    try:
        while True:
            worker = make_worker(
                env['registry'],
                args.queues,
                args.name,
                args.job_monitoring_interval,
                args.lease_grace,
            )
            try:
                worker.work(
                    burst=args.burst,
                    logging_level=args.logging_level,
                    with_scheduler=not args.no_scheduler,
                )
                return 0
            except UNAVAILABLE as exc:
                log.warning('Redis is unavailable (%s): working again once it answers', exc)
                wait_for_redis(worker.connection)
    finally:
        env['closer']()


def wait_for_redis(connection, pause=0.5, longest=5.0):
    """Return once ``connection`` answers a PING."""
    while True:
        try:
            connection.ping()
            return
        except UNAVAILABLE:
            time.sleep(pause)
            pause = min(pause * 2, longest)


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
