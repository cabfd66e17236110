"""The one status vocabulary every built-in strategy reports in."""
from datetime import datetime, timezone

QUEUED = 'queued'
STARTED = 'started'
FINISHED = 'finished'
FAILED = 'failed'
UNKNOWN = 'unknown'

#: Every state a verify answer's ``status`` may hold.
STATES = (QUEUED, STARTED, FINISHED, FAILED, UNKNOWN)
#: The states after which a job changes no more.
ENDED = frozenset((FINISHED, FAILED))

MAX_MESSAGE = 500


def isoformat(timestamp):
    """Format a POSIX timestamp as ISO 8601 UTC with a ``Z``."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def exception_info(exc):
    """Return ``{"type", "message"}`` for ``exc``: no traceback, ever."""
    return {'type': type(exc).__name__, 'message': str(exc)[:MAX_MESSAGE]}


def error_string(info):
    """The short ``"Type: message"`` string of an :func:`exception_info`."""
    if not info['message']:
        return info['type']
    return f"{info['type']}: {info['message']}"


def progress_info(current, total=None, message=None):
    """The ``progress`` object of a verify answer."""
    percent = None
    if total:
        percent = round(100.0 * current / total, 1)
    return {
        'current': current,
        'total': total,
        'percent': percent,
        'message': None if message is None else str(message)[:MAX_MESSAGE],
    }


def build_report(status, enqueued_at=None, started_at=None, ended_at=None,
                 progress=None, meta=None, exception=None, owner=None):
    """Assemble a verify answer (without ``job_id``) from stored fields.

    ``owner`` is there for the verify view's owner check, which removes it
    before answering.
    """
    report = {
        'owner': owner,
        'status': status,
        'completed': status == FINISHED,
        'failed': status == FAILED,
        'enqueued_at': enqueued_at,
        'started_at': started_at,
        'ended_at': ended_at,
    }
    if progress is not None:
        report['progress'] = progress
    if meta is not None:
        report['meta'] = meta
    if exception is not None:
        report['exception'] = exception
        report['error'] = error_string(exception)
    return report
