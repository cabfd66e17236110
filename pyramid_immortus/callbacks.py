"""Calling a tracking strategy's optional callbacks."""

import logging

log = logging.getLogger(__name__)


def notify(strategy, event, job_id, *args):
    """Call ``strategy.<event>(job_id, *args)`` if the strategy has it.

    A callback that raises is logged and otherwise ignored: a strategy's
    bookkeeping must never lose the job itself.  Returns ``True`` when the
    callback ran without error.
    """
    method = getattr(strategy, event, None)
    if method is None:
        return False
    try:
        method(job_id, *args)
    except Exception:
        log.exception('tracking strategy %r failed in %s for job %s', strategy, event, job_id)
        return False
    return True
