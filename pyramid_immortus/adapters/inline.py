"""``inline``: run the job at once, in the caller's thread."""

import logging
import threading
import time

from zope.interface import implementer

from ..exceptions import UnknownJob
from ..interfaces import ICancellableQueueAdapter

log = logging.getLogger(__name__)


def run_logged(job):
    """Run ``job``; log (rather than raise) whatever it raises that its run
    has not logged already, a ``BaseException`` such as ``SystemExit``
    included.

    Its strategy has recorded the failure already, and the request that
    enqueued it should still answer with the job's id.
    """
    try:
        job.run()
    except BaseException:
        if not job.failure_logged:
            log.exception('job %r failed', job)


@implementer(ICancellableQueueAdapter)
class InlineAdapter:
    """Performs each job inside ``perform_later``, and its retries after
    their waits; for tests and scripts.  It cannot run a job later: a job
    enqueued with ``Job.set(wait=...)`` is refused (``NotImplementedError``,
    as ActiveJob's inline adapter does)."""

    strategy_name = 'memory'
    log_name = 'Inline'

    def __init__(self, registry=None):
        self.registry = registry
        self._running = {}
        self._waiting = set()  # the ids of jobs that wait for a retry
        self._lock = threading.Lock()

    def prepare(self, job):
        """Refuse a job due later: this adapter runs jobs at once."""
        if job.scheduled_at is not None and job.scheduled_at > time.time():
            raise NotImplementedError(
                'the inline adapter runs jobs at once: use "async" or "rq" to run one later'
            )

    def enqueue(self, job):
        """Run ``job`` now, and again after each wait its retries ask for
        (a cancel during a wait ends it: it does not run again)."""
        with self._lock:
            self._running[job.job_id] = job
        try:
            while True:
                run_logged(job)
                if job.next_retry is None:
                    break
                job.attempt = job.next_retry.attempt
                with self._lock:
                    self._waiting.add(job.job_id)
                cancelled = job.wait_for_cancel(job.next_retry.delay)
                with self._lock:
                    self._waiting.discard(job.job_id)
                if cancelled:
                    break  # the cancel view records the job's end
        finally:
            with self._lock:
                self._running.pop(job.job_id, None)

    def job_class_of(self, job_id):
        """The class of a job running now, in some thread."""
        with self._lock:
            job = self._running.get(job_id)
        return job.job_class if job is not None else None

    def cancel(self, job_id):
        """Drop a job that waits for its retry (``'cancelled'``: it never
        runs again), or ask one that runs now to stop (``'stopping'``)."""
        with self._lock:
            job = self._running.get(job_id)
            waiting = job_id in self._waiting
        if job is None:
            raise UnknownJob(job_id)
        job.request_cancel()
        return 'cancelled' if waiting else 'stopping'
