"""``memory``: the in-process strategy of the embedded default."""
import heapq
import threading
import time

from zope.interface import implementer

from ..exceptions import UnknownJob
from ..interfaces import IJobTrackingStrategy, IStatusReport, ITrackingCallbacks
from ..settings import SETTINGS_PREFIX
from .base import ReportingStrategy
from ..status import (
    ENDED, FAILED, FINISHED, QUEUED, STARTED, build_report, exception_info,
    isoformat, progress_info,
)


@implementer(IJobTrackingStrategy, ITrackingCallbacks, IStatusReport)
class MemoryStrategy(ReportingStrategy):
    """Keeps job states in a dict of this process, guarded by a lock.

    A record is dropped ``ttl`` seconds after its job ends, ``max_age``
    seconds after it was last written if the job never ends, and the
    soonest-expiring records go first once there are more than ``max_jobs``.
    Only the process that runs the jobs can see them: use it with the
    ``inline`` and ``async`` adapters.
    """

    def __init__(self, ttl=86400, max_age=7 * 86400, max_jobs=10000, clock=time.time):
        self.ttl = ttl
        self.max_age = max_age
        self.max_jobs = max_jobs
        self.clock = clock
        self._records = {}
        self._expiry = []  # heap of (expires_at, job_id); stale entries skipped
        self._lock = threading.Lock()

    @classmethod
    def from_registry(cls, registry):
        """Build one from the ``immortus.*`` settings."""
        settings = registry.settings
        return cls(
            ttl=settings[SETTINGS_PREFIX + 'status_ttl'],
            max_age=settings[SETTINGS_PREFIX + 'status_max_age'],
            max_jobs=settings[SETTINGS_PREFIX + 'memory_max_jobs'],
        )

    def __len__(self):
        with self._lock:
            self._purge(self.clock())
            return len(self._records)

    # -- writing ---------------------------------------------------------

    def _update(self, job_id, **fields):
        now = self.clock()
        with self._lock:
            self._purge(now)
            record = self._records.get(job_id)
            if record is None:
                record = self._records[job_id] = {'status': QUEUED}
            record.update(fields)
            ttl = self.ttl if record.get('status') in ENDED else self.max_age
            record['expires'] = now + ttl
            heapq.heappush(self._expiry, (record['expires'], job_id))
            self._bound()

    def _purge(self, now):
        expiry, records = self._expiry, self._records
        while expiry and expiry[0][0] <= now:
            expires, job_id = heapq.heappop(expiry)
            record = records.get(job_id)
            if record is not None and record['expires'] == expires:
                del records[job_id]
        if len(expiry) > 2 * len(records) + 1024:
            self._expiry = [(r['expires'], k) for k, r in records.items()]
            heapq.heapify(self._expiry)

    def _bound(self):
        records = self._records
        while len(records) > self.max_jobs:
            expires, job_id = heapq.heappop(self._expiry)
            record = records.get(job_id)
            if record is not None and record['expires'] == expires:
                del records[job_id]

    def job_enqueued(self, job_id):
        """Record the job as queued."""
        self._update(job_id, status=QUEUED,
                     enqueued_at=isoformat(self.clock()))

    def job_started(self, job_id):
        """Record the job as started."""
        self._update(job_id, status=STARTED, started_at=isoformat(self.clock()))

    def job_finished(self, job_id):
        """Record the job as finished."""
        self._update(job_id, status=FINISHED, ended_at=isoformat(self.clock()))

    def job_failed(self, job_id, exc):
        """Record the job as failed with ``exc``'s type and message."""
        self._update(job_id, status=FAILED, ended_at=isoformat(self.clock()),
                     exception=exception_info(exc))

    def job_progress(self, job_id, current, total, message):
        """Record the job's progress."""
        self._update(job_id, progress=progress_info(current, total, message))

    def job_meta(self, job_id, meta):
        """Record the job's ``meta`` dict."""
        self._update(job_id, meta=dict(meta))

    def job_owner(self, job_id, owner):
        """Record who enqueued the job."""
        self._update(job_id, owner=owner)

    def job_discarded(self, job_id):
        """Forget a job that could not be enqueued."""
        with self._lock:
            self._records.pop(job_id, None)

    # -- reading ---------------------------------------------------------

    def fetch(self, job_ids):
        """Copies of the records of ``job_ids`` (``None`` where missing)."""
        now = self.clock()
        with self._lock:
            records = [self._records.get(job_id) for job_id in job_ids]
            return [dict(r) if r is not None and r['expires'] > now else None
                    for r in records]

    def decode(self, job_id, record):
        """A record as a verify answer."""
        if record is None:
            raise UnknownJob(job_id)
        return build_report(
            record['status'], record.get('enqueued_at'), record.get('started_at'),
            record.get('ended_at'), record.get('progress'), record.get('meta'),
            record.get('exception'), record.get('owner'),
        )

    def owner(self, job_id):
        """The user id that enqueued the job, or ``None``."""
        record = self.fetch([job_id])[0]
        if record is None:
            raise UnknownJob(job_id)
        return record.get('owner')
