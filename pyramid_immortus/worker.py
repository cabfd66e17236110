"""``immortus-worker CONFIG_URI``: an rq worker inside the Pyramid app.

The worker boots the application from its ``.ini`` with
:func:`pyramid.paster.bootstrap`, so jobs run with the application's
registry, settings and strategies, then works on the configured Redis and
queues.  SIGTERM (or one SIGINT) lets the current job finish and stops;
a second SIGINT stops at once (rq's warm and cold shutdown).
"""
import argparse
import gc
import sys

from pyramid.paster import bootstrap, setup_logging
from rq import Queue, Worker
from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL
from rq.job import JobStatus

from .adapters.rq import ImmortusRQJob
from .callbacks import notify
from .connection import get_redis
from .exceptions import Cancelled, failure
from .settings import get_settings
from .strategies.rq import RQ_LEASE_GRACE


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

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string='',
                           execution=None):
        """rq's bookkeeping of a failed job, then the job's strategy learns
        of the failure too: one that came before ``Job.run`` (a class this
        worker does not know, arguments that do not unpickle), a work horse
        that died, a stop on request.  A strategy that recorded the job's end
        already keeps it (an ended state never changes)."""
        stopped = getattr(self, '_stopped_job_id', None) == job.id
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry,
                                   exc_string=exc_string, execution=execution)
        strategy = job.tracking_strategy()
        if strategy is not None:
            notify(strategy, 'job_failed', job.id, failure_of(exc_string or '', stopped))


def make_worker(registry, queues=None, name=None, job_monitoring_interval=DEFAULT_JOB_MONITORING_INTERVAL,
                lease_grace=RQ_LEASE_GRACE, worker_class=ImmortusWorker):
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
        connection=connection, name=name,
        job_monitoring_interval=job_monitoring_interval,
        default_result_ttl=settings.result_ttl,
    )
    worker.lease_grace = lease_grace
    return worker


def seconds(minimum):
    """An argparse type: a whole number of seconds, at least ``minimum``."""
    def convert(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f'{value} is less than {minimum}')
        return value

    return convert


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='immortus-worker',
        description='Run pyramid_immortus jobs from rq queues, inside the '
                    'Pyramid application configured by CONFIG_URI.')
    parser.add_argument('config_uri', help='the .ini file, e.g. production.ini')
    parser.add_argument('--queue', '-q', action='append', dest='queues',
                        metavar='NAME', help='a queue to work on (repeatable; '
                        'default: immortus.rq.queue)')
    parser.add_argument('--burst', '-b', action='store_true',
                        help='stop once the queues are empty')
    parser.add_argument('--name', '-n', help='the worker name rq shows')
    parser.add_argument('--job-monitoring-interval', type=seconds(1),
                        default=DEFAULT_JOB_MONITORING_INTERVAL,
                        metavar='SECONDS', help='heartbeat interval (default 30); '
                        'a dead worker\'s job reads failed after this + 60 s')
    parser.add_argument('--lease-grace', type=seconds(0), default=RQ_LEASE_GRACE,
                        metavar='SECONDS',
                        help='added to the heartbeat interval to declare a '
                        'silent worker dead (default 60, as rq)')
    parser.add_argument('--logging-level', default='INFO')
    return parser.parse_args(argv)


def main(argv=None):
    """The ``immortus-worker`` console script."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.config_uri)
    env = bootstrap(args.config_uri)
    try:
        worker = make_worker(env['registry'], args.queues, args.name,
                             args.job_monitoring_interval, args.lease_grace)
        worker.work(burst=args.burst, logging_level=args.logging_level)
    finally:
        env['closer']()
    return 0


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
