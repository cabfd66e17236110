"""``inline``: run the job at once, in the caller's thread."""
import logging

from zope.interface import implementer

from ..interfaces import IQueueAdapter

log = logging.getLogger(__name__)


def run_logged(job):
    """Run ``job``; log (rather than raise) whatever it raises, a
    ``BaseException`` such as ``SystemExit`` included.

    Its strategy has recorded the failure already, and the request that
    enqueued it should still answer with the job's id.
    """
    try:
        job.run()
    except BaseException:
        log.exception('job %r failed', job)


@implementer(IQueueAdapter)
class InlineAdapter:
    """Performs each job inside ``perform_later``; for tests and scripts."""

    strategy_name = 'memory'

    def __init__(self, registry=None):
        self.registry = registry

    def prepare(self, job):
        """Nothing to prepare: the job stays in this process."""

    def enqueue(self, job):
        """Run ``job`` now."""
        run_logged(job)
