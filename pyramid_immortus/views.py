"""The default verify views (one job, many jobs) and the cancel view.

Every answer is JSON with ``Cache-Control: no-store``.
"""

import logging
import re

from pyramid.csrf import LegacySessionCSRFStoragePolicy, check_csrf_token
from pyramid.exceptions import BadCSRFOrigin, BadCSRFToken
from pyramid.interfaces import ICSRFStoragePolicy, ISessionFactory

from . import logs
from .callbacks import notify
from .catalog import find_tracking_strategy, get_catalog, get_queue_adapter
from .exceptions import (
    BackendUnavailable,
    Cancelled,
    CannotCancel,
    JobAlreadyEnded,
    UnknownJob,
)
from .renderers import json_response
from .settings import get_settings
from .status import ENDED, UNKNOWN, JobRecord, dumps

log = logging.getLogger(__name__)

#: The longest job id a verify URL may carry.
MAX_JOB_ID_LENGTH = 64
JOB_ID = re.compile(rf'[A-Za-z0-9_.-]{{1,{MAX_JOB_ID_LENGTH}}}')


class BadQuery(ValueError):
    """A query string that is not UTF-8."""


def valid_job_id(job_id):
    """At most ``MAX_JOB_ID_LENGTH`` of ``[A-Za-z0-9_.-]``: what a verify URL
    may carry."""
    return JOB_ID.fullmatch(job_id) is not None


def query_param(request, name, default=None):
    """``request.GET[name]``, or :class:`BadQuery` for a query string that
    does not decode."""
    try:
        return request.GET.get(name, default)
    except UnicodeDecodeError:
        raise BadQuery(name) from None


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


def read_records(strategy, job_ids, with_owner):
    """``{job_id: JobRecord or exception}``: one read with ``read_many``
    when the strategy has it; else its reports, and with ``with_owner`` its
    ``owner(job_id)`` where it has one."""
    read_many = getattr(strategy, 'read_many', None)
    if read_many is not None:
        return read_many(job_ids)
    find_owner = getattr(strategy, 'owner', None) if with_owner else None
    records: dict[str, JobRecord | Exception] = {}
    for job_id in job_ids:
        try:
            owner = find_owner(job_id) if find_owner is not None else None
            records[job_id] = JobRecord(
                read_report(strategy, job_id), None, None if owner is None else str(owner)
            )
        except Exception as exc:
            records[job_id] = exc
    return records


def unknown(job_id):
    """``(404, body)`` of a job nobody knows, or that the caller may not
    see: the two must look the same."""
    return 404, {'job_id': job_id, 'status': UNKNOWN, 'error': 'unknown job'}


def strategy_error(job_id, exc):
    """``(status, body)`` for an exception a strategy raised."""
    if isinstance(exc, UnknownJob):
        return unknown(job_id)
    if isinstance(exc, BackendUnavailable):
        log.error('backend unavailable while verifying job %s: %s', job_id, exc)
        return 503, {'job_id': job_id, 'error': 'backend unavailable'}
    log.error('tracking strategy failed to verify job %s', job_id, exc_info=exc)
    return 500, {'job_id': job_id, 'error': 'tracking strategy error'}


def verify_jobs(request, job_ids, job_class=None):
    """``{job_id: (status, body)}``: the default verify of each job, with
    one read of the strategy for all of them."""
    results = {}
    valid = []
    for job_id in job_ids:
        if valid_job_id(job_id):
            valid.append(job_id)
        else:
            results[job_id] = (
                400,
                {'job_id': job_id[:MAX_JOB_ID_LENGTH], 'error': 'malformed job id'},
            )
    registry = request.registry
    if valid and job_class is not None and get_catalog(registry).get(job_class) is None:
        for job_id in valid:
            results[job_id] = 404, {'job_id': job_id, 'error': 'unknown job class'}
        valid = []
    if valid:
        owner_only = get_settings(registry).verify_owner_only
        try:
            strategy = find_tracking_strategy(registry, job_class)
            records = read_records(strategy, valid, owner_only)
        except Exception as exc:
            records = dict.fromkeys(valid, exc)
        for job_id in valid:
            record = records.get(job_id)
            if record is None:  # a strategy that left it out broke its contract
                record = LookupError(f'the tracking strategy gave no record of {job_id}')
            results[job_id] = judge(request, job_id, record, job_class, owner_only)
    return {job_id: results[job_id] for job_id in job_ids}


def may_see(request, owner):
    """Whether the caller may see a job of ``owner`` (a string, or ``None``
    for a job that nobody owns)."""
    if owner is None:
        return True
    userid = request.authenticated_userid
    return userid is not None and str(userid) == owner


def judge(request, job_id, record, job_class, owner_only):
    """``(status, body)`` of one record: a ``job_class`` that is not the
    job's own, or (with ``owner_only``) an owner that is not the caller,
    answers as an unknown job does; a report that is not JSON is this job's
    error alone."""
    if isinstance(record, Exception):
        return strategy_error(job_id, record)
    if job_class is not None and record.job_class not in (None, job_class):
        return unknown(job_id)
    if owner_only and not may_see(request, record.owner):
        return unknown(job_id)
    report = dict(record.report)
    report['job_id'] = job_id
    try:
        dumps(report)
    except (TypeError, ValueError) as exc:
        return strategy_error(job_id, exc)
    return 200, report


def answer(result):
    """The JSON response of a ``(status, body)`` pair."""
    status, data = result
    return json_response(data, status)


def bad_query():
    return json_response({'error': 'the query string is not valid UTF-8'}, 400)


def verify_view(request):
    """``GET {verify_path}/{job_id}[/{job_class}]``."""
    match = request.matchdict
    job_id = match['job_id']
    return answer(verify_jobs(request, [job_id], match.get('job_class'))[job_id])


def verify_batch_view(request):
    """``GET {verify_path}?ids=ID1,ID2,...[&job_class=Name]``: ``{"jobs":
    {ID: <the single verify's JSON, plus "code">}}``."""
    try:
        ids = [job_id for job_id in query_param(request, 'ids', '').split(',') if job_id]
        job_class = query_param(request, 'job_class')
    except BadQuery:
        return bad_query()
    ids = list(dict.fromkeys(ids))
    limit = get_settings(request).batch_max
    if not ids:
        return json_response({'error': 'ids is required: ?ids=ID1,ID2'}, 400)
    if len(ids) > limit:
        return json_response({'error': f'at most {limit} ids in one request'}, 400)
    results = verify_jobs(request, ids, job_class)
    jobs = {job_id: dict(data, code=status) for job_id, (status, data) in results.items()}
    return json_response({'jobs': jobs})


def can_hold_csrf_tokens(registry):
    """Whether the application keeps CSRF tokens: a session factory, or a
    CSRF storage policy of its own."""
    policy = registry.queryUtility(ICSRFStoragePolicy)
    return registry.queryUtility(ISessionFactory) is not None or not isinstance(
        policy, (LegacySessionCSRFStoragePolicy, type(None))
    )


def check_cancel_csrf(request):
    """Refuse a cross-site cancel: a browser's ``Sec-Fetch-Site`` (or, from
    older browsers, ``Origin``) must name this site, and where the
    application keeps CSRF tokens, the ``X-CSRF-Token`` header (or the
    ``csrf_token`` form field) must hold the caller's token."""
    site = request.headers.get('Sec-Fetch-Site')
    if site is not None:
        if site not in ('same-origin', 'none'):
            raise BadCSRFOrigin(f'a cross-site cancel ({site})')
    else:
        origin = request.headers.get('Origin')
        if origin is not None and origin != request.host_url:
            raise BadCSRFOrigin('a cancel from another origin')
    if can_hold_csrf_tokens(request.registry):
        try:
            check_csrf_token(request)
        except BadCSRFToken:
            raise
        except Exception:  # a form body that does not parse holds no token
            raise BadCSRFToken('the form body does not parse') from None


def cancel_view(request):
    """``POST {verify_path}/{job_id}/cancel[?job_class=Name]``: ``200`` a
    queued job was cancelled, ``202`` a running one was asked to stop,
    ``409`` it has ended (or cannot be stopped), ``404`` unknown.

    The job's class, owner and state come from the job's own records (its
    adapter's and its own strategy's), never from what the caller names: a
    ``job_class`` that is not the job's own answers 404.
    """
    registry = request.registry
    if get_settings(registry).cancel_require_csrf:
        check_cancel_csrf(request)
    job_id = request.matchdict['job_id']
    try:
        job_class = query_param(request, 'job_class')
    except BadQuery:
        return bad_query()
    if not valid_job_id(job_id):
        return answer(verify_jobs(request, [job_id])[job_id])
    if job_class is not None and get_catalog(registry).get(job_class) is None:
        return answer(verify_jobs(request, [job_id], job_class)[job_id])
    adapter = get_queue_adapter(registry)
    class_of = getattr(adapter, 'job_class_of', None)
    cancel = getattr(adapter, 'cancel', None)
    own_class = None
    if class_of is not None:
        try:
            own_class = class_of(job_id)
        except BackendUnavailable as exc:
            return answer(strategy_error(job_id, exc))
        if own_class is not None:
            if job_class not in (None, own_class):
                return answer(unknown(job_id))
            job_class = own_class
    status, data = verify_jobs(request, [job_id], job_class)[job_id]
    if status != 200:
        return answer((status, data))
    state = data.get('status')
    if (isinstance(state, str) and state in ENDED) or data.get('completed') is True:
        return json_response({'job_id': job_id, 'error': 'the job has ended'}, 409)
    if cancel is None or class_of is None:
        # an adapter that cannot say whose a job is cannot be trusted to
        # take back the right one
        return json_response(
            {'job_id': job_id, 'error': 'the queue adapter cannot cancel jobs'}, 501
        )
    if own_class is None:
        return answer(unknown(job_id))  # not a job the adapter holds
    try:
        outcome = cancel(job_id)
    except (UnknownJob, BackendUnavailable) as exc:
        return answer(strategy_error(job_id, exc))
    except (JobAlreadyEnded, CannotCancel) as exc:
        message = 'the job has ended' if isinstance(exc, JobAlreadyEnded) else str(exc)
        return json_response({'job_id': job_id, 'error': message}, 409)
    klass = get_catalog(registry).get(own_class)
    place = logs.where_queue(registry, getattr(klass, 'queue', None))
    if outcome == 'stopping':
        logs.log.info('Stopping %s (Job ID: %s) in %s', own_class, job_id, place)
        return json_response({'job_id': job_id, 'stopping': True}, 202)
    notify(
        find_tracking_strategy(registry, job_class),
        'job_failed',
        job_id,
        Cancelled('cancelled on request'),
    )
    logs.log.info('Cancelled %s (Job ID: %s) in %s', own_class, job_id, place)
    return json_response({'job_id': job_id, 'cancelled': True}, 200)


def forbidden_view(request):
    """A denied permission on this add-on's routes: JSON ``403``."""
    data = {'error': 'forbidden'}
    if request.matchdict and 'job_id' in request.matchdict:
        data['job_id'] = request.matchdict['job_id'][:MAX_JOB_ID_LENGTH]
    return json_response(data, 403)


def bad_csrf_view(exc, request):
    """A failed CSRF check (token or origin) on the cancel route: JSON
    ``400``."""
    error = 'bad CSRF origin' if isinstance(exc, BadCSRFOrigin) else 'bad CSRF token'
    return json_response(
        {'job_id': request.matchdict['job_id'][:MAX_JOB_ID_LENGTH], 'error': error}, 400
    )


def url_decode_error_view(exc, request):
    """A verify URL that is not UTF-8: JSON ``400`` rather than Pyramid's
    unhandled ``URLDecodeError``."""
    return json_response({'error': 'the URL is not valid UTF-8'}, 400)


def not_found_view(request):
    """A path under the verify path that no view answers (an unknown path,
    a wrong method): JSON ``404``, as every answer there."""
    return json_response({'error': 'not found'}, 404)


class RawPathPrefix:
    """A view predicate on the undecoded ``PATH_INFO``: the path itself or
    anything below it (for errors raised before the path can be decoded or
    matched)."""

    def __init__(self, path, config):
        self.path = path

    def text(self):
        return f'immortus_raw_path_prefix = {self.path}'

    phash = text

    def __call__(self, context, request):
        raw = request.environ.get('PATH_INFO', '')
        return raw == self.path or raw.startswith(self.path + '/')


def enqueue_error_view(exc, request):
    """Let the ``immortus`` renderer answer a create view whose
    ``perform_later`` failed: ``503`` for a backend outage, ``500`` for
    anything else, each with a fixed message (the detail goes to the log,
    not to the client)."""
    log.error('a job could not be enqueued: %s', exc)
    return exc
