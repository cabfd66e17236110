"""``async``: a bounded pool of threads in the web process itself."""
import threading
from concurrent.futures import ThreadPoolExecutor

from zope.interface import implementer

from ..exceptions import CannotCancel, UnknownJob
from ..interfaces import ICancellableQueueAdapter
from ..settings import SETTINGS_PREFIX
from .inline import run_logged


@implementer(ICancellableQueueAdapter)
class AsyncAdapter:
    """Runs jobs on ``workers`` threads of this process: the embedded
    default, no Redis needed.  Jobs that wait for a thread are kept in
    memory, so they are lost if the process stops."""

    strategy_name = 'memory'

    def __init__(self, workers=4):
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix='immortus')
        self._pending = {}
        self._lock = threading.Lock()

    @classmethod
    def from_registry(cls, registry):
        """Build one from ``immortus.async_workers``."""
        return cls(registry.settings[SETTINGS_PREFIX + 'async_workers'])

    def enqueue(self, job):
        """Hand ``job`` to the pool."""
        with self._lock:
            future = self._pool.submit(run_logged, job)
            self._pending[job.job_id] = future
        future.add_done_callback(lambda _: self._forget(job.job_id))

    def _forget(self, job_id):
        with self._lock:
            self._pending.pop(job_id, None)

    def cancel(self, job_id, before_stop=None):
        """Drop a job that has not started yet; a running thread cannot be
        stopped (``CannotCancel``)."""
        with self._lock:
            future = self._pending.get(job_id)
        if future is None:
            raise UnknownJob(job_id)
        if not future.cancel():
            raise CannotCancel('the job is running on a thread that cannot be stopped')
        return 'cancelled'

    def shutdown(self, wait=True):
        """Stop taking jobs; with ``wait``, let the running ones end."""
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
