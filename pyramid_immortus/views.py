"""The default verify view: one job's state as JSON, always with its id."""
import logging
import re

from .catalog import find_tracking_strategy, get_catalog
from .exceptions import BackendUnavailable, UnknownJob
from .renderers import json_response
from .status import UNKNOWN

log = logging.getLogger(__name__)

JOB_ID = re.compile(r'[A-Za-z0-9_.-]{1,64}')


def valid_job_id(job_id):
    """At most 64 of ``[A-Za-z0-9_.-]``: what a verify URL may carry."""
    return JOB_ID.fullmatch(job_id) is not None


def read_report(strategy, job_id):
    """Ask ``strategy`` for the verify answer of ``job_id`` (no ``job_id``
    key yet): its ``report`` if it has one, else ``completed`` plus
    ``meta``, the latter never overwriting the former."""
    report = getattr(strategy, 'report', None)
    if report is not None:
        data = dict(report(job_id))
    else:
        meta = getattr(strategy, 'meta', None)
        data = dict(meta(job_id)) if meta is not None else {}
        data['completed'] = bool(strategy.completed(job_id))
    return data


def strategy_error(job_id, exc):
    """``(status, body)`` for an exception a strategy raised."""
    if isinstance(exc, UnknownJob):
        return 404, {'job_id': job_id, 'status': UNKNOWN, 'error': 'unknown job'}
    if isinstance(exc, BackendUnavailable):
        return 503, {'job_id': job_id, 'error': 'backend unavailable'}
    log.error('tracking strategy failed to verify job %s', job_id, exc_info=exc)
    return 500, {'job_id': job_id, 'error': 'tracking strategy error'}


def check_job(request, job_id, job_class=None):
    """Return ``(status, body)``: the default verify of one job."""
    if not valid_job_id(job_id):
        return 400, {'job_id': job_id[:64], 'error': 'malformed job id'}
    if job_class is not None and get_catalog(request.registry).get(job_class) is None:
        return 404, {'job_id': job_id, 'error': 'unknown job class'}
    try:
        strategy = find_tracking_strategy(request.registry, job_class)
        data = read_report(strategy, job_id)
    except Exception as exc:
        return strategy_error(job_id, exc)
    data['job_id'] = job_id
    return 200, data


def verify_view(request):
    """``GET {verify_path}/{job_id}[/{job_class}]``."""
    match = request.matchdict
    status, data = check_job(request, match['job_id'], match.get('job_class'))
    return json_response(data, status)


def backend_unavailable_view(exc, request):
    """Let the ``immortus`` renderer answer ``503`` when a create view's
    ``perform_later`` finds its backend down."""
    log.error('backend unavailable: %s', exc)
    return exc
