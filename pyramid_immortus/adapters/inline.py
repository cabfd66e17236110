"""``inline``: run the job at once, in the caller's thread."""
import logging

from zope.interface import implementer

from ..interfaces import IQueueAdapter

log = logging.getLogger(__name__)


def run_logged(job):
    """Run ``job``; log (rather than raise) what it raises.

    Its strategy has recorded the failure already, and the request that
    enqueued it should still answer with the job's id.
    """
    try:
        job.run()
    except Exception:
        log.exception('job %r failed', job)


@implementer(IQueueAdapter)
class InlineAdapter:
    """Performs each job inside ``perform_later``; for tests and scripts."""

    strategy_name = 'memory'

    def __init__(self, registry=None):
        self.registry = registry

    def enqueue(self, job):
        """Run ``job`` now."""
        run_logged(job)
