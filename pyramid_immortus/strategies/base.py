"""What the built-in strategies share: reading reports."""
from ..connection import backend_errors
from ..exceptions import UnknownJob


class ReportingStrategy:
    """Derives ``report``, ``report_many``, ``completed`` and ``meta`` from
    two methods: ``fetch(job_ids)``, the raw records of many jobs in one
    read, and ``decode(job_id, raw)``, one raw record as a report (raising
    :class:`UnknownJob` for a missing one)."""

    def fetch(self, job_ids):
        raise NotImplementedError

    def decode(self, job_id, raw):
        raise NotImplementedError

    def report(self, job_id):
        """The whole verify answer of ``job_id``; raises ``UnknownJob``."""
        return self.decode(job_id, self.fetch([job_id])[0])

    def report_many(self, job_ids):
        """``{job_id: report or UnknownJob}`` in one read."""
        reports = {}
        for job_id, raw in zip(job_ids, self.fetch(job_ids), strict=True):
            try:
                reports[job_id] = self.decode(job_id, raw)
            except UnknownJob as exc:
                reports[job_id] = exc
        return reports

    def completed(self, job_id):
        """``True`` once the job finished (``False`` for an unknown id)."""
        try:
            return self.report(job_id)['completed']
        except UnknownJob:
            return False

    def meta(self, job_id):
        """The verify answer's fields beyond ``completed``."""
        report = self.report(job_id)
        del report['completed']
        return report


def pipelined(connection, command, keys, *args):
    """Run ``command(key, *args)`` for every key in one round trip: the
    command alone for one key, a non-transactional pipeline for more."""
    with backend_errors():
        if len(keys) == 1:
            return [getattr(connection, command)(keys[0], *args)]
        pipe = connection.pipeline(transaction=False)
        for key in keys:
            getattr(pipe, command)(key, *args)
        return pipe.execute()
