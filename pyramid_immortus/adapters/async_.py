"""``async``: a bounded pool of threads in the web process itself."""

import atexit
import heapq
import logging
import signal
import threading
import time
from collections import OrderedDict

from zope.interface import implementer

from ..callbacks import notify
from ..exceptions import BackendUnavailable, Cancelled, Shutdown, UnknownJob
from ..interfaces import ICancellableQueueAdapter
from ..settings import get_settings
from .inline import run_logged

log = logging.getLogger(__name__)

#: A worker thread with nothing to do for this long ends.
IDLE_SECONDS = 10.0
#: What a shutdown gives the writes of its jobs' failures beyond the grace.
WRITE_SECONDS = 2.0


def exit_on_sigterm(signum, frame):
    """SIGTERM as ``SystemExit``, so that the process runs its exit hooks
    (the pool's shutdown) instead of vanishing."""
    raise SystemExit(128 + signum)


def handle_sigterm():
    """Install :func:`exit_on_sigterm` if nothing else handles SIGTERM
    and this is the main thread (a server that installed its own handler,
    such as gunicorn, keeps it)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, exit_on_sigterm)


@implementer(ICancellableQueueAdapter)
class AsyncAdapter:
    """Runs jobs on at most ``workers`` threads of this process: the
    embedded default, no Redis needed.

    Jobs that wait for a thread are kept in memory, so they do not survive
    the process.  Every ``lease / 3`` seconds the pool gives each of its
    jobs (waiting or running) a heartbeat with a deadline ``lease`` seconds
    ahead, so that a strategy shared with other processes (``redis``) reads
    a job of a process that died as failed (``WorkerLost``) at most
    ``lease`` seconds after its last heartbeat.  When the process exits
    (SIGINT, SIGTERM, ``sys.exit``), waiting jobs are recorded as failed
    (``Shutdown``) at once, and running jobs get ``shutdown_grace`` seconds
    to end (their heartbeats go on) before they are recorded so too.

    Jobs due later (``Job.set(wait=...)``, a retry's wait) wait on one timer
    thread, not on pool threads.  Cancelling a running job asks it to stop
    (``Job.cancelled``; its next ``progress`` raises ``Cancelled``).
    """

    strategy_name = 'memory'
    log_name = 'Async'

    def __init__(self, workers=4, lease=30.0, shutdown_grace=10.0):
        self.workers = workers
        self.lease = lease
        self.shutdown_grace = shutdown_grace
        self._waiting = OrderedDict()
        self._running = {}
        self._due = {}  # job_id: job, for jobs that wait for a time
        self._timeline = []  # heap of (due, sequence, job_id); stale entries skipped
        self._sequence = 0
        self._timing = False
        self._threads = 0
        self._idle = 0
        self._beating = False
        self._closed = False
        self._exit_hook = False
        self._cond = threading.Condition()

    @classmethod
    def from_registry(cls, registry):
        """Build one from the ``immortus.async_*`` settings."""
        settings = get_settings(registry)
        return cls(
            settings.async_workers,
            lease=settings.async_lease,
            shutdown_grace=settings.async_shutdown_grace,
        )

    def activate(self):
        """Called once the configuration chose this adapter: SIGTERM now
        ends the process through its exit hooks (see :func:`handle_sigterm`)."""
        handle_sigterm()

    def lease_deadline(self):
        """The deadline of a new job's first lease (a POSIX time)."""
        return time.time() + self.lease

    # -- running ---------------------------------------------------------

    def prepare(self, job):
        """Nothing to prepare: the job stays in this process."""

    def queue_label(self, queue):
        """The queue a log line names (jobs of this pool share it)."""
        return queue or 'default'

    def enqueue(self, job):
        """Hand ``job`` to the pool (to its timer, if it is due later)."""
        with self._cond:
            if self._closed:
                raise BackendUnavailable('the async pool is shutting down')
            if job.scheduled_at is not None and job.scheduled_at > time.time():
                self._wait_until(job, job.scheduled_at)
            else:
                self._waiting[job.job_id] = job
            self._start()

    def _wait_until(self, job, due):
        self._due[job.job_id] = job
        self._sequence += 1
        heapq.heappush(self._timeline, (due, self._sequence, job.job_id))
        if not self._timing:
            self._timing = True
            self._spawn(self._time, 'immortus-timer')
        self._cond.notify_all()

    def _time(self):
        with self._cond:
            while self._timeline and not self._closed:
                due, _, job_id = self._timeline[0]
                left = due - time.time()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._timeline)
                job = self._due.pop(job_id, None)
                if job is not None:
                    self._waiting[job_id] = job
                    self._start()
            self._timing = False

    def _start(self):
        """Start what the jobs need (called with the lock held)."""
        if self._waiting or self._due:
            if not self._exit_hook:
                self._exit_hook = True
                atexit.register(self.shutdown)
            if not self._beating:
                self._beating = True
                self._spawn(self._beat, 'immortus-heartbeat')
        if self._waiting:
            if self._idle:
                self._cond.notify_all()
            elif self._threads < self.workers:
                self._threads += 1
                self._spawn(self._work, f'immortus-{self._threads}')

    def _spawn(self, target, name):
        threading.Thread(target=target, name=name, daemon=True).start()

    def _work(self):
        while True:
            with self._cond:
                idle_until = time.monotonic() + IDLE_SECONDS
                while not self._waiting:
                    left = idle_until - time.monotonic()
                    if self._closed or left <= 0:
                        self._threads -= 1
                        return
                    self._idle += 1
                    self._cond.wait(left)
                    self._idle -= 1
                job_id, job = self._waiting.popitem(last=False)
                self._running[job_id] = job
            try:
                run_logged(job)
            finally:
                with self._cond:
                    del self._running[job_id]
                    retry = job.next_retry
                    again = retry is not None and not (self._closed or job.cancelled)
                    if again:
                        job.attempt = retry.attempt
                        self._wait_until(job, time.time() + retry.delay)
                    self._cond.notify_all()
                if retry is not None and not again:
                    self._no_retry(job)

    def _no_retry(self, job):
        """A job whose retry was asked for while it stopped (a cancel) or the
        process stopped: it ends failed, it does not wait for ever."""
        reason = (
            Cancelled('cancelled on request')
            if job.cancelled
            else Shutdown('the process stopped before the job could run again')
        )
        notify(job.tracking_strategy, 'job_failed', job.job_id, reason)
        log.warning('%r will not run again: %s', job, reason)

    def _jobs(self):
        with self._cond:
            return [*self._waiting.values(), *self._running.values(), *self._due.values()]

    def _beat(self):
        while True:
            with self._cond:
                # beats go on through a shutdown's grace, while jobs run
                if not (self._waiting or self._running or self._due):
                    self._beating = False
                    return
            deadline = self.lease_deadline()
            for job in self._jobs():
                notify(job.tracking_strategy, 'job_heartbeat', job.job_id, deadline)
            with self._cond:
                self._cond.wait(self.lease / 3)

    # -- cancelling ------------------------------------------------------

    def job_class_of(self, job_id):
        """The registered class name of a job this pool holds (waiting or
        running), else ``None``."""
        with self._cond:
            job = self._waiting.get(job_id) or self._running.get(job_id) or self._due.get(job_id)
        return job.job_class if job is not None else None

    def cancel(self, job_id):
        """Drop a job that has not started yet, or waits for its time
        (``'cancelled'``: it never runs); ask a running one to stop
        (``'stopping'``: see ``Job.cancelled``)."""
        with self._cond:
            if (self._waiting.pop(job_id, None) or self._due.pop(job_id, None)) is not None:
                return 'cancelled'
            job = self._running.get(job_id)
        if job is None:
            raise UnknownJob(job_id)
        job.request_cancel()
        return 'stopping'

    # -- stopping --------------------------------------------------------

    def shutdown(self, grace=None):
        """Stop taking jobs, record the waiting ones as failed
        (``Shutdown``), give the running ones ``grace`` seconds (default
        ``shutdown_grace``) and record those still running as failed.  It
        returns within ``grace`` + :data:`WRITE_SECONDS`, even when the
        store does not answer."""
        grace = self.shutdown_grace if grace is None else grace
        until = time.monotonic() + grace
        with self._cond:
            self._closed = True
            waiting = [*self._waiting.values(), *self._due.values()]
            self._waiting.clear()
            self._due.clear()
            self._cond.notify_all()
        writers = [
            self._record_in_background(
                waiting,
                'the process stopped before the job could run',
                'had not started when the process stopped',
            )
        ]
        with self._cond:
            while self._running and time.monotonic() < until:
                self._cond.wait(until - time.monotonic())
            running = list(self._running.values())
        writers.append(
            self._record_in_background(
                running,
                'the process stopped while the job was running',
                f'was still running {grace:.1f} s after the process began to stop',
            )
        )
        for writer in writers:
            writer.join(max(0.0, until + WRITE_SECONDS - time.monotonic()))

    def _record_in_background(self, jobs, message, what):
        def record():
            for job in jobs:
                if notify(job.tracking_strategy, 'job_failed', job.job_id, Shutdown(message)):
                    log.warning('%r %s: recorded as failed', job, what)
                else:
                    log.error('%r %s: its failure could not be recorded', job, what)

        writer = threading.Thread(target=record, daemon=True, name='immortus-shutdown')
        writer.start()
        return writer
