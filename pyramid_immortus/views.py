"""The default verify views (one job, many jobs) and the cancel view.

Every answer is JSON with ``Cache-Control: no-store``.
"""
import logging
import re

from .catalog import find_tracking_strategy, get_catalog, get_queue_adapter, notify
from .exceptions import (
    BackendUnavailable, Cancelled, CannotCancel, JobAlreadyEnded, UnknownJob,
)
from .renderers import json_response
from .settings import SETTINGS_PREFIX
from .status import ENDED, UNKNOWN

log = logging.getLogger(__name__)

JOB_ID = re.compile(r'[A-Za-z0-9_.-]{1,64}')
_NO_OWNER_KEY = object()


def valid_job_id(job_id):
    """At most 64 of ``[A-Za-z0-9_.-]``: what a verify URL may carry."""
    return JOB_ID.fullmatch(job_id) is not None


def read_report(strategy, job_id):
    """Ask ``strategy`` for the verify answer of ``job_id`` (no ``job_id``
    key yet): its ``report`` if it has one, else ``completed`` plus
    ``meta``, the latter never overwriting the former."""
    report = getattr(strategy, 'report', None)
    if report is not None:
        return dict(report(job_id))
    meta = getattr(strategy, 'meta', None)
    data = dict(meta(job_id)) if meta is not None else {}
    data['completed'] = bool(strategy.completed(job_id))
    return data


def read_reports(strategy, job_ids):
    """``{job_id: report or exception}``: one read with ``report_many``
    when the strategy has it, one read per job otherwise."""
    report_many = getattr(strategy, 'report_many', None)
    if report_many is not None:
        return report_many(job_ids)
    reports = {}
    for job_id in job_ids:
        try:
            reports[job_id] = read_report(strategy, job_id)
        except Exception as exc:
            reports[job_id] = exc
    return reports


def unknown(job_id):
    """``(404, body)`` of a job nobody knows, or that the caller may not
    see: the two must look the same."""
    return 404, {'job_id': job_id, 'status': UNKNOWN, 'error': 'unknown job'}


def strategy_error(job_id, exc):
    """``(status, body)`` for an exception a strategy raised."""
    if isinstance(exc, UnknownJob):
        return unknown(job_id)
    if isinstance(exc, BackendUnavailable):
        return 503, {'job_id': job_id, 'error': 'backend unavailable'}
    log.error('tracking strategy failed to verify job %s', job_id, exc_info=exc)
    return 500, {'job_id': job_id, 'error': 'tracking strategy error'}


def owner_of(strategy, job_id, report):
    """The owner in ``report`` (the built-in strategies read it with the
    rest), else from ``strategy.owner`` when it has one, else ``None``."""
    owner = report.pop('owner', _NO_OWNER_KEY)
    if owner is not _NO_OWNER_KEY:
        return owner
    find_owner = getattr(strategy, 'owner', None)
    return find_owner(job_id) if find_owner is not None else None


def verify_jobs(request, job_ids, job_class=None):
    """``{job_id: (status, body)}``: the default verify of each job, with
    one read of the strategy for all of them."""
    results = {}
    valid = []
    for job_id in job_ids:
        if valid_job_id(job_id):
            valid.append(job_id)
        else:
            results[job_id] = 400, {'job_id': job_id[:64], 'error': 'malformed job id'}
    registry = request.registry
    if valid and job_class is not None and get_catalog(registry).get(job_class) is None:
        for job_id in valid:
            results[job_id] = 404, {'job_id': job_id, 'error': 'unknown job class'}
        valid = []
    if valid:
        strategy = None
        try:
            strategy = find_tracking_strategy(registry, job_class)
            reports = read_reports(strategy, valid)
        except Exception as exc:
            reports = dict.fromkeys(valid, exc)
        owner_only = registry.settings[SETTINGS_PREFIX + 'verify_owner_only']
        for job_id in valid:
            results[job_id] = judge(request, strategy, job_id, reports[job_id], owner_only)
    return {job_id: results[job_id] for job_id in job_ids}


def judge(request, strategy, job_id, report, owner_only):
    """``(status, body)`` of one report, owner rules applied."""
    if isinstance(report, Exception):
        return strategy_error(job_id, report)
    try:
        owner = owner_of(strategy, job_id, report) if owner_only else report.pop('owner', None)
    except Exception as exc:
        return strategy_error(job_id, exc)
    if owner is not None and owner_only and str(owner) != str(request.authenticated_userid):
        return unknown(job_id)
    report['job_id'] = job_id
    return 200, report


def verify_view(request):
    """``GET {verify_path}/{job_id}[/{job_class}]``."""
    match = request.matchdict
    job_id = match['job_id']
    status, data = verify_jobs(request, [job_id], match.get('job_class'))[job_id]
    return json_response(data, status)


def verify_batch_view(request):
    """``GET {verify_path}?ids=ID1,ID2,...[&job_class=Name]``: ``{"jobs":
    {ID: <the single verify's JSON, plus "code">}}``."""
    ids = [job_id for job_id in request.GET.get('ids', '').split(',') if job_id]
    ids = list(dict.fromkeys(ids))
    limit = request.registry.settings[SETTINGS_PREFIX + 'batch_max']
    if not ids:
        return json_response({'error': 'ids is required: ?ids=ID1,ID2'}, 400)
    if len(ids) > limit:
        return json_response({'error': f'at most {limit} ids in one request'}, 400)
    results = verify_jobs(request, ids, request.GET.get('job_class'))
    jobs = {job_id: dict(data, code=status) for job_id, (status, data) in results.items()}
    return json_response({'jobs': jobs})


def cancel_view(request):
    """``POST {verify_path}/{job_id}/cancel[?job_class=Name]``: ``200`` a
    queued job was cancelled, ``202`` a running one was asked to stop,
    ``409`` it has ended (or cannot be stopped), ``404`` unknown."""
    job_id = request.matchdict['job_id']
    status, data = verify_jobs(request, [job_id], request.GET.get('job_class'))[job_id]
    if status != 200:
        return json_response(data, status)
    if data.get('status') in ENDED or data.get('completed'):
        return json_response({'job_id': job_id, 'error': 'the job has ended'}, 409)
    registry = request.registry
    cancel = getattr(get_queue_adapter(registry), 'cancel', None)
    if cancel is None:
        return json_response(
            {'job_id': job_id, 'error': 'the queue adapter cannot cancel jobs'}, 501)
    strategy = find_tracking_strategy(registry, request.GET.get('job_class'))
    reason = Cancelled('cancelled on request')

    def record():
        notify(strategy, 'job_failed', job_id, reason)

    try:
        # stopping a running job kills it: the adapter records the reason first
        outcome = cancel(job_id, before_stop=record)
    except (UnknownJob, BackendUnavailable) as exc:
        status, data = strategy_error(job_id, exc)
        return json_response(data, status)
    except (JobAlreadyEnded, CannotCancel) as exc:
        message = 'the job has ended' if isinstance(exc, JobAlreadyEnded) else str(exc)
        return json_response({'job_id': job_id, 'error': message}, 409)
    if outcome == 'stopping':
        return json_response({'job_id': job_id, 'stopping': True}, 202)
    record()
    return json_response({'job_id': job_id, 'cancelled': True}, 200)


def forbidden_view(request):
    """A denied permission on this add-on's routes: JSON ``403``."""
    data = {'error': 'forbidden'}
    if request.matchdict and 'job_id' in request.matchdict:
        data['job_id'] = request.matchdict['job_id'][:64]
    return json_response(data, 403)


def bad_csrf_view(request):
    """A failed CSRF check on the cancel route: JSON ``400``."""
    return json_response({'job_id': request.matchdict['job_id'][:64],
                          'error': 'bad CSRF token'}, 400)


def url_decode_error_view(exc, request):
    """A verify URL that is not UTF-8: JSON ``400`` rather than Pyramid's
    unhandled ``URLDecodeError``."""
    return json_response({'error': 'the URL is not valid UTF-8'}, 400)


class RawPathPrefix:
    """A view predicate on the undecoded ``PATH_INFO``, for the one error
    raised before the path can be decoded."""

    def __init__(self, prefix, config):
        self.prefix = prefix

    def text(self):
        return f'immortus_raw_path_prefix = {self.prefix}'

    phash = text

    def __call__(self, context, request):
        return request.environ.get('PATH_INFO', '').startswith(self.prefix)


def backend_unavailable_view(exc, request):
    """Let the ``immortus`` renderer answer ``503`` when a create view's
    ``perform_later`` finds its backend down."""
    log.error('backend unavailable: %s', exc)
    return exc
