"""``memory``: the in-process strategy of the embedded default."""

import heapq
import threading
import time
from collections import OrderedDict

from zope.interface import implementer

from ..exceptions import CapacityExceeded, UnknownJob
from ..interfaces import IJobTrackingStrategy, IStatusReport, ITrackingCallbacks
from ..settings import get_settings
from ..status import (
    ENDED,
    FAILED,
    FINISHED,
    QUEUED,
    STARTED,
    JobRecord,
    build_report,
    exception_info,
    isoformat,
    progress_info,
)
from .base import ReportingStrategy


@implementer(IJobTrackingStrategy, ITrackingCallbacks, IStatusReport)
class MemoryStrategy(ReportingStrategy):
    """Keeps job states in a dict of this process, guarded by a lock.

    A record is created only by ``job_created`` (or ``job_enqueued``); every
    other write updates an existing record and never revives a missing one,
    and an ended record never changes again.  A record is dropped ``ttl``
    seconds after its job ends, or ``max_age`` seconds after its last write
    while the job has not ended (progress keeps it alive).  At ``max_jobs``
    records, the oldest ended ones make room; an unfinished record is never
    pushed out, and when only unfinished ones are left a new job is refused
    (:class:`CapacityExceeded`, a 503).  Only the process that runs the jobs
    can see them: use it with the ``inline`` and ``async`` adapters.
    """

    #: its records live in this process only
    process_local = True

    def __init__(self, ttl=86400, max_age=7 * 86400, max_jobs=10000, clock=time.time):
        self.ttl = ttl
        self.max_age = max_age
        self.max_jobs = max_jobs
        self.clock = clock
        self._records = {}
        self._expiry = []  # heap of (expires_at, job_id); stale entries skipped
        self._ended = OrderedDict()  # ended job ids, oldest end first
        self._lock = threading.Lock()

    @classmethod
    def from_registry(cls, registry):
        """Build one from the ``immortus.*`` settings."""
        settings = get_settings(registry)
        return cls(
            ttl=settings.status_ttl,
            max_age=settings.status_max_age,
            max_jobs=settings.memory_max_jobs,
        )

    def __len__(self):
        with self._lock:
            self._purge(self.clock())
            return len(self._records)

    # -- writing ---------------------------------------------------------

    def _set_expiry(self, job_id, record, now):
        record['expires'] = now + (self.ttl if record['status'] in ENDED else self.max_age)
        heapq.heappush(self._expiry, (record['expires'], job_id))

    def _create(self, job_id, job_class, owner, **fields):
        now = self.clock()
        with self._lock:
            self._purge(now)
            if job_id in self._records:
                raise ValueError(f'job {job_id!r} exists already')
            while len(self._records) >= self.max_jobs:
                if not self._ended:
                    raise CapacityExceeded(
                        f'the memory strategy holds {self.max_jobs} unfinished jobs '
                        '(immortus.memory_max_jobs)'
                    )
                oldest, _ = self._ended.popitem(last=False)
                self._records.pop(oldest, None)
            record = self._records[job_id] = {
                'status': QUEUED,
                'enqueued_at': isoformat(now),
                'job_class': job_class,
                'owner': None if owner is None else str(owner),
                **fields,
            }
            self._set_expiry(job_id, record, now)

    def _update(self, job_id, **fields):
        now = self.clock()
        with self._lock:
            self._purge(now)
            record = self._records.get(job_id)
            if record is None or record['status'] in ENDED:
                return False
            record.update(fields)
            self._set_expiry(job_id, record, now)
            if record['status'] in ENDED:
                self._ended[job_id] = None
            return True

    def _purge(self, now):
        expiry, records = self._expiry, self._records
        while expiry and expiry[0][0] <= now:
            expires, job_id = heapq.heappop(expiry)
            record = records.get(job_id)
            if record is not None and record['expires'] == expires:
                del records[job_id]
                self._ended.pop(job_id, None)
        if len(expiry) > 2 * len(records) + 1024:
            self._expiry = [(r['expires'], k) for k, r in records.items()]
            heapq.heapify(self._expiry)

    def job_created(
        self, job_id, job_class, owner, deadline=None, max_attempts=1, scheduled_at=None
    ):
        """Create the job's record, queued, with its class and owner."""
        self._create(job_id, job_class, owner, max_attempts=max_attempts, scheduled_at=scheduled_at)

    def job_enqueued(self, job_id):
        """Create the record of a job whose class and owner are unknown."""
        self._create(job_id, None, None)

    def job_started(self, job_id):
        """Record the job as started."""
        self._update(job_id, status=STARTED, started_at=isoformat(self.clock()))

    def job_retrying(self, job_id, attempt, retry_at, last_error):
        """The run failed with an error of a ``retry_on``: the job waits,
        queued, for its run ``attempt`` at ``retry_at``."""
        self._update(
            job_id, status=QUEUED, attempt=attempt, retry_at=retry_at, last_error=last_error
        )

    def job_result(self, job_id, result):
        """Keep what ``perform`` returned (JSON data)."""
        self._update(job_id, result=result)

    def job_finished(self, job_id):
        """Record the job as finished."""
        self._update(job_id, status=FINISHED, ended_at=isoformat(self.clock()))

    def job_failed(self, job_id, exc):
        """Record the job as failed with ``exc``'s type and message."""
        self._update(
            job_id, status=FAILED, ended_at=isoformat(self.clock()), exception=exception_info(exc)
        )

    def job_progress(self, job_id, current, total, message):
        """Record the job's progress."""
        self._update(job_id, progress=progress_info(current, total, message))

    def job_meta(self, job_id, meta):
        """Record the job's ``meta`` dict (JSON data, as ``Job`` checks)."""
        self._update(job_id, meta=dict(meta))

    def job_heartbeat(self, job_id, deadline):
        """A live job's record stays (a record of this process dies with
        it, so there is no lease to keep)."""
        self._update(job_id)

    def job_discarded(self, job_id):
        """Forget a job that could not be enqueued."""
        with self._lock:
            self._records.pop(job_id, None)
            self._ended.pop(job_id, None)

    # -- reading ---------------------------------------------------------

    def fetch(self, job_ids):
        """Copies of the records of ``job_ids`` (``None`` where missing)."""
        now = self.clock()
        with self._lock:
            records = [self._records.get(job_id) for job_id in job_ids]
            return [dict(r) if r is not None and r['expires'] > now else None for r in records]

    def decode(self, job_id, record):
        """A record as a :class:`JobRecord`."""
        if record is None:
            raise UnknownJob(job_id)
        report = build_report(
            record['status'],
            record.get('enqueued_at'),
            record.get('started_at'),
            record.get('ended_at'),
            record.get('progress'),
            record.get('meta'),
            record.get('exception'),
            record.get('attempt', 1),
            record.get('max_attempts', 1),
            record.get('scheduled_at'),
            record.get('retry_at'),
            record.get('last_error'),
            record.get('result'),
        )
        return JobRecord(report, record['job_class'], record['owner'])
