"""A second, hostile user and input that is not what the docs show: the
answers stay true and private (WebTest, real Redis where a strategy lives
there)."""

import decimal
import logging
import math
import threading
import time
import uuid
from datetime import datetime

import pytest
from pyramid.exceptions import ConfigurationError
from pyramid.session import SignedCookieSessionFactory
from webtest import TestApp

from pyramid_immortus import Job, tracking_strategy
from pyramid_immortus.catalog import find_tracking_strategy
from pyramid_immortus.status import exception_info
from tests.support import ALICE, BOB, REDIS_URL, UNKNOWN, HeaderSecurityPolicy, Root, free_port


class Gate(Job):
    """Runs until the test opens its gate."""

    def perform(self, key):
        self.registry.gates[key].wait(10)


class Victim(Job):
    def perform(self):
        self.registry.ran.append(self.job_id)


class OwnStrategy:
    """A strategy written as the Rails documentation writes them, that can
    keep owners: it knows nothing of other classes' jobs."""

    def __init__(self):
        self.records = {}

    def job_owner(self, job_id, owner):
        self.records.setdefault(job_id, {})['owner'] = owner

    def job_enqueued(self, job_id):
        self.records.setdefault(job_id, {})['status'] = 'queued'

    def job_failed(self, job_id, exc):
        self.records.setdefault(job_id, {})['status'] = 'failed'

    def completed(self, job_id):
        return False

    def owner(self, job_id):
        return self.records.get(job_id, {}).get('owner')


class Invoice(Job):
    """Tracked by ``OwnStrategy`` (see ``make_app``)."""

    def perform(self):
        pass


class Separate(Job):
    """A job with an inline strategy of its own (see ``make_app``)."""

    def perform(self, key):
        self.registry.gates[key].wait(10)


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError('no words')


class Unspeakable(Job):
    def perform(self):
        raise BadStr()


class Values(Job):
    def perform(self, kind):
        if kind == 'nan':
            self.progress(math.nan, 10)
        elif kind == 'inf':
            self.progress(1, math.inf)
        elif kind == 'bool':
            self.progress(True)
        elif kind == 'decimal':
            self.progress(decimal.Decimal('2.5'), decimal.Decimal('10'))
        elif kind == 'datetime-meta':
            self.meta['when'] = datetime(2026, 1, 1)
            self.progress(1, 2)
        elif kind == 'datetime-meta-at-end':
            self.meta['when'] = datetime(2026, 1, 1)
        elif kind == 'exit':
            raise SystemExit(3)
        elif kind == 'interrupt':
            raise KeyboardInterrupt


def start(request):
    job_class = {
        'gate': Gate,
        'victim': Victim,
        'invoice': Invoice,
        'separate': Separate,
        'unspeakable': Unspeakable,
        'values': Values,
    }[request.matchdict['name']]
    args = [request.params['arg']] if 'arg' in request.params else []
    return job_class.perform_later(request, *args)


class UUIDPolicy(HeaderSecurityPolicy):
    """User ids are ``uuid.UUID`` objects, as many applications have."""

    def authenticated_userid(self, request):
        userid = super().authenticated_userid(request)
        return uuid.UUID(userid) if userid else None


def make_app(make_config, session=False, policy=HeaderSecurityPolicy, **settings):
    config = make_config(
        {
            'immortus.queue_adapter': 'async',
            'immortus.async_workers': '1',
            'immortus.verify_owner_only': 'true',
            **settings,
        }
    )
    config.registry.gates = {}
    config.registry.ran = []
    config.set_root_factory(Root)
    config.set_security_policy(policy())
    if session:
        config.set_session_factory(SignedCookieSessionFactory('secret'))
    config.add_tracking_strategy('own', OwnStrategy)
    config.add_tracking_strategy('memory2', 'pyramid_immortus.strategies.memory.MemoryStrategy')
    config.add_route('start', '/start/{name}', request_method='POST')
    config.add_view(start, route_name='start', renderer='immortus')
    for job_class in (Gate, Victim, Unspeakable, Values):
        config.add_immortus_job(job_class)
    config.add_immortus_job(Invoice, tracking_strategy='own')
    config.add_immortus_job(Separate, tracking_strategy='memory2')
    app = TestApp(config.make_wsgi_app())
    app.registry = config.registry
    return app


@pytest.fixture
def app(make_config):
    return make_app(make_config)


def gate(app, key, name='gate', headers=ALICE):
    app.registry.gates[key] = threading.Event()
    return app.post(f'/start/{name}?arg={key}', headers=headers).json['job_id']


def status(app, job_id, headers=ALICE, suffix=''):
    return app.get(f'/immortus/verify/{job_id}{suffix}', headers=headers).json['status']


def wait_started(app, job_id, suffix=''):
    from tests.support import wait_for

    wait_for(lambda: status(app, job_id, suffix=suffix) == 'started', message='started')


# -- 1. cancel takes the job's class from the job's own records ------------


def test_cancel_with_another_class_is_404_and_the_victim_runs(app):
    running = gate(app, 'first')
    wait_started(app, running)
    victim = app.post('/start/victim', headers=ALICE).json['job_id']
    for headers in (BOB, {}):
        res = app.post(
            f'/immortus/verify/{victim}/cancel?job_class=Invoice', headers=headers, status=404
        )
        assert res.json == {'job_id': victim, **UNKNOWN}
    # even the owner cannot cancel it under a class that is not its own
    app.post(f'/immortus/verify/{victim}/cancel?job_class=Invoice', headers=ALICE, status=404)
    assert status(app, victim) == 'queued'
    # Invoice's strategy knows nothing of the victim, and says nothing of it
    assert app.get(f'/immortus/verify/{victim}/Invoice', headers=BOB).json == {
        'job_id': victim,
        'completed': False,
    }
    app.registry.gates['first'].set()
    from tests.support import wait_for

    wait_for(lambda: status(app, victim) == 'finished', message='the victim ran')
    assert app.registry.ran == [victim]


def test_cancel_is_recorded_in_the_jobs_own_strategy(app):
    running = gate(app, 'first')
    wait_started(app, running)
    queued = gate(app, 'second', name='separate')
    # through the default route, which reads another strategy ...
    app.post(f'/immortus/verify/{queued}/cancel', headers=ALICE, status=200)
    data = app.get(f'/immortus/verify/{queued}/Separate', headers=ALICE).json
    # ... the cancellation lands in the job's own strategy
    assert data['status'] == 'failed' and data['exception']['type'] == 'Cancelled'
    app.post(f'/immortus/verify/{queued}/cancel', headers=BOB, status=404)
    app.registry.gates['first'].set()


# -- 2. owners are strings, and an owner that cannot be kept refuses the job


def test_uuid_owners_in_redis(make_config, redis_db):
    app = make_app(
        make_config,
        policy=UUIDPolicy,
        **{'immortus.tracking_strategy': 'redis', 'immortus.redis_url': REDIS_URL},
    )
    user = {'X-User': str(uuid.uuid4())}
    job_id = app.post('/start/victim', headers=user).json['job_id']
    assert redis_db.hget(f'immortus:job:{job_id}', 'owner') == user['X-User'].encode()
    from tests.support import wait_for

    wait_for(lambda: status(app, job_id, headers=user) == 'finished', message='finished')
    app.get(f'/immortus/verify/{job_id}', headers={'X-User': str(uuid.uuid4())}, status=404)


def test_an_owner_that_cannot_be_recorded_refuses_the_job(make_config, caplog):
    app = make_app(
        make_config,
        **{
            'immortus.tracking_strategy': 'redis',
            'immortus.redis_url': f'redis://127.0.0.1:{free_port()}/0',
        },
    )
    with caplog.at_level(logging.ERROR):
        res = app.post('/start/victim', headers=ALICE, status=503)
    assert res.json == {'error': 'backend unavailable, try again later'}
    assert 'Connection refused' in caplog.text or 'connecting' in caplog.text
    assert app.registry.ran == []


def test_owner_only_with_a_strategy_that_cannot_keep_owners_is_a_configuration_error(make_config):
    class NoOwners:
        def completed(self, job_id):
            return False

    config = make_config({'immortus.verify_owner_only': 'true'})
    config.add_tracking_strategy('plain', NoOwners)

    @tracking_strategy('plain')
    class Public(Job):
        def perform(self):
            pass

    config.add_immortus_job(Public, tracking_strategy='plain')
    with pytest.raises(ConfigurationError) as info:
        config.commit()
    assert 'verify_owner_only' in str(info.value) and "'Public'" in str(info.value)


# -- 3. records are never pushed out or reborn without their owner ---------


def test_a_full_memory_strategy_refuses_new_jobs_and_keeps_the_old(make_config):
    app = make_app(make_config, **{'immortus.memory_max_jobs': '2'})
    first = gate(app, 'a')
    second = gate(app, 'b')
    res = app.post('/start/victim', headers=BOB, status=503)
    assert res.json == {'error': 'backend unavailable, try again later'}
    for job_id in (first, second):
        assert status(app, job_id) in ('queued', 'started')
        app.get(f'/immortus/verify/{job_id}', headers=BOB, status=404)
    app.registry.gates['a'].set()
    app.registry.gates['b'].set()


# -- 7. the cancel view refuses cross-site requests ------------------------


@pytest.mark.parametrize(
    'headers, error',
    [
        ({'Origin': 'https://evil.example'}, 'bad CSRF origin'),
        ({'Origin': 'null'}, 'bad CSRF origin'),
        ({'Sec-Fetch-Site': 'cross-site'}, 'bad CSRF origin'),
        ({'Sec-Fetch-Site': 'same-site', 'Origin': 'http://localhost'}, 'bad CSRF origin'),
    ],
)
def test_a_cross_site_cancel_is_refused(app, headers, error):
    running = gate(app, 'first')
    wait_started(app, running)
    queued = gate(app, 'second')
    res = app.post(f'/immortus/verify/{queued}/cancel', headers={**ALICE, **headers}, status=400)
    assert res.json == {'job_id': queued, 'error': error}
    assert status(app, queued) == 'queued'
    same = {'Origin': 'http://localhost', 'Sec-Fetch-Site': 'same-origin'}
    app.post(f'/immortus/verify/{queued}/cancel', headers={**ALICE, **same}, status=200)
    app.registry.gates['first'].set()


def test_with_sessions_the_cancel_needs_the_token(make_config):
    app = make_app(make_config, session=True)
    running = gate(app, 'first')
    wait_started(app, running)
    queued = gate(app, 'second')
    res = app.post(f'/immortus/verify/{queued}/cancel', headers=ALICE, status=400)
    assert res.json == {'job_id': queued, 'error': 'bad CSRF token'}
    app.post(
        f'/immortus/verify/{queued}/cancel', headers={**ALICE, 'X-CSRF-Token': 'guess'}, status=400
    )
    assert status(app, queued) == 'queued'
    app.registry.gates['first'].set()


def test_the_cancel_check_can_be_turned_off(make_config):
    app = make_app(make_config, session=True, **{'immortus.cancel_require_csrf': 'false'})
    running = gate(app, 'first')
    wait_started(app, running)
    queued = gate(app, 'second')
    app.post(
        f'/immortus/verify/{queued}/cancel',
        headers={**ALICE, 'Origin': 'https://x.example'},
        status=200,
    )
    app.registry.gates['first'].set()


# -- 12. a failure that cannot be written ---------------------------------


def test_an_exception_whose_str_raises_still_ends_the_job(app):
    job_id = app.post('/start/unspeakable', headers=ALICE).json['job_id']
    from tests.support import wait_for

    data = wait_for(
        lambda: (lambda d: d if d['status'] != 'queued' and d['status'] != 'started' else None)(
            app.get(f'/immortus/verify/{job_id}', headers=ALICE).json
        ),
        message='ended',
    )
    assert data['status'] == 'failed' and data['exception']['type'] == 'BadStr'
    assert exception_info(BadStr())['message'] == '<BadStr whose str() failed>'


def test_a_failing_end_write_is_retried_with_the_bare_type(make_config, monkeypatch):
    app = make_app(make_config, **{'immortus.queue_adapter': 'inline'})
    strategy = find_tracking_strategy(app.registry)
    real = strategy.job_failed
    calls = []

    def flaky(job_id, exc):
        calls.append(exc)
        if len(calls) == 1:
            raise ConnectionError('the store hiccuped')
        real(job_id, exc)

    monkeypatch.setattr(strategy, 'job_failed', flaky)
    monkeypatch.setattr(Job, 'END_RETRIES', (0.01,))
    job_id = app.post('/start/values?arg=nan', headers=ALICE).json['job_id']
    data = app.get(f'/immortus/verify/{job_id}', headers=ALICE).json
    assert data['status'] == 'failed' and data['exception'] == {'type': 'ValueError', 'message': ''}
    assert type(calls[1]).__name__ == 'ValueError'


# -- 14. values that are not JSON -----------------------------------------


@pytest.mark.parametrize('strategy', ['memory', 'redis'])
@pytest.mark.parametrize(
    'kind, error',
    [
        ('nan', 'ValueError: progress current must be a finite number, not nan'),
        ('inf', 'ValueError: progress total must be a finite number, not inf'),
        ('bool', 'TypeError: progress current must be a number, not bool'),
        ('datetime-meta', 'TypeError: the meta of'),
        ('datetime-meta-at-end', 'TypeError: the meta of'),
    ],
)
def test_values_that_are_not_json_fail_the_job_at_the_call(
    make_config, redis_db, strategy, kind, error
):
    app = make_app(
        make_config,
        **{
            'immortus.queue_adapter': 'inline',
            'immortus.tracking_strategy': strategy,
            'immortus.redis_url': REDIS_URL,
        },
    )
    job_id = app.post(f'/start/values?arg={kind}', headers=ALICE).json['job_id']
    res = app.get(f'/immortus/verify/{job_id}', headers=ALICE)
    assert res.json['status'] == 'failed' and res.json['error'].startswith(error)
    assert 'NaN' not in res.text and 'Infinity' not in res.text
    batch = app.get(f'/immortus/verify?ids={job_id},other', headers=ALICE).json['jobs']
    assert batch[job_id]['code'] == 200


@pytest.mark.parametrize('strategy', ['memory', 'redis'])
def test_a_decimal_progress_is_a_number(make_config, redis_db, strategy):
    app = make_app(
        make_config,
        **{
            'immortus.queue_adapter': 'inline',
            'immortus.tracking_strategy': strategy,
            'immortus.redis_url': REDIS_URL,
        },
    )
    job_id = app.post('/start/values?arg=decimal', headers=ALICE).json['job_id']
    data = app.get(f'/immortus/verify/{job_id}', headers=ALICE).json
    assert data['status'] == 'finished'
    assert data['progress'] == {'current': 2.5, 'total': 10.0, 'percent': 25.0, 'message': None}


def test_one_job_that_cannot_be_serialised_is_its_own_error(make_config, caplog):
    class Odd:
        def completed(self, job_id):
            return False

        def meta(self, job_id):
            return (
                {'when': datetime(2026, 1, 1)}
                if job_id == 'odd'
                else {'n': math.nan}
                if job_id == 'nan'
                else {'fine': True}
            )

    config = make_config({'immortus.queue_adapter': 'inline'})
    config.add_tracking_strategy('odd', Odd)

    class OddJob(Job):
        pass

    config.add_immortus_job(OddJob, tracking_strategy='odd')
    app = TestApp(config.make_wsgi_app())
    with caplog.at_level(logging.ERROR):
        jobs = app.get('/immortus/verify?ids=odd,nan,good&job_class=OddJob').json['jobs']
        res = app.get('/immortus/verify/nan/OddJob', status=500)
    assert jobs['odd'] == {'job_id': 'odd', 'error': 'tracking strategy error', 'code': 500}
    assert jobs['nan']['code'] == 500
    assert jobs['good'] == {'job_id': 'good', 'fine': True, 'completed': False, 'code': 200}
    assert res.json == {'job_id': 'nan', 'error': 'tracking strategy error'}


# -- 15. undecodable or unmatched requests --------------------------------


@pytest.mark.parametrize(
    'url, method',
    [
        ('/immortus/verify?ids=%ff', 'get'),
        ('/immortus/verify?ids=a&job_class=%ff', 'get'),
        ('/immortus/verify/abc/cancel?job_class=%ff', 'post'),
    ],
)
def test_an_undecodable_query_is_a_json_400(app, url, method):
    res = getattr(app, method)(url, status=400)
    assert res.content_type == 'application/json'
    assert res.json == {'error': 'the query string is not valid UTF-8'}


@pytest.mark.parametrize(
    'url, method',
    [
        ('/immortus/verify/abc', 'post'),
        ('/immortus/verify', 'delete'),
        ('/immortus/verify/a/b/c/d', 'get'),
    ],
)
def test_unmatched_paths_under_the_verify_path_answer_json(app, url, method):
    res = getattr(app, method)(url, status=404)
    assert res.content_type == 'application/json'
    assert res.json == {'error': 'not found'}
    assert res.headers['Cache-Control'] == 'no-store'


def test_paths_outside_the_verify_path_keep_pyramids_404(app):
    assert app.get('/immortus/verifyx', status=404).content_type != 'application/json'


# -- 18. BaseException -----------------------------------------------------


@pytest.mark.parametrize(
    'kind, error', [('exit', 'SystemExit: 3'), ('interrupt', 'KeyboardInterrupt')]
)
def test_base_exceptions_under_inline_are_the_jobs_failure(make_config, caplog, kind, error):
    app = make_app(make_config, **{'immortus.queue_adapter': 'inline'})
    with caplog.at_level(logging.ERROR):
        job_id = app.post(f'/start/values?arg={kind}', headers=ALICE).json['job_id']
    data = app.get(f'/immortus/verify/{job_id}', headers=ALICE).json
    assert data['status'] == 'failed' and data['error'] == error
    assert f'Error performing Values (Job ID: {job_id}) from Inline(default) in ' in caplog.text


def test_base_exceptions_under_async_are_logged(app, caplog):
    from tests.support import wait_for

    with caplog.at_level(logging.ERROR):
        job_id = app.post('/start/values?arg=exit', headers=ALICE).json['job_id']
        wait_for(lambda: status(app, job_id) == 'failed', message='failed')
        wait_for(lambda: 'SystemExit' in caplog.text, message='logged')


# -- found by the hostile review ------------------------------------------


class Untrusting:
    """An adapter that can cancel but cannot say whose a job is."""

    strategy_name = 'memory'

    def enqueue(self, job):
        pass

    def cancel(self, job_id):
        return 'cancelled'


def test_an_adapter_that_cannot_name_a_jobs_class_cannot_cancel(make_config):
    config = make_config(
        {'immortus.queue_adapter': 'untrusting', 'immortus.verify_owner_only': 'true'}
    )
    config.set_root_factory(Root)
    config.set_security_policy(HeaderSecurityPolicy())
    config.add_queue_adapter('untrusting', Untrusting)
    config.add_tracking_strategy('own', OwnStrategy)
    config.add_route('start', '/start/{name}', request_method='POST')
    config.add_view(start, route_name='start', renderer='immortus')
    config.add_immortus_job(Victim)
    config.add_immortus_job(Invoice, tracking_strategy='own')
    config.registry.ran = []
    app = TestApp(config.make_wsgi_app())
    victim = app.post('/start/victim', headers=ALICE).json['job_id']
    for suffix in ('', '?job_class=Invoice'):
        res = app.post(f'/immortus/verify/{victim}/cancel{suffix}', headers=BOB, status=(404, 501))
        assert 'cancelled' not in res.json
    assert app.get(f'/immortus/verify/{victim}', headers=ALICE).json['status'] == 'queued'


class UpdateOnlyOwners(OwnStrategy):
    """Keeps the documented contract literally: only the creation
    (job_enqueued) makes a record, job_owner updates one."""

    def job_owner(self, job_id, owner):
        if job_id in self.records:
            self.records[job_id]['owner'] = owner

    def job_discarded(self, job_id):
        self.records.pop(job_id, None)


def test_an_owner_the_strategy_did_not_keep_refuses_the_job(make_config):
    config = make_config({'immortus.queue_adapter': 'inline', 'immortus.verify_owner_only': 'true'})
    config.set_security_policy(HeaderSecurityPolicy())
    config.add_tracking_strategy('update-only', UpdateOnlyOwners)
    config.add_route('start', '/start/{name}', request_method='POST')
    config.add_view(start, route_name='start', renderer='immortus')
    config.add_immortus_job(Invoice, tracking_strategy='update-only')
    app = TestApp(config.make_wsgi_app())
    res = app.post('/start/invoice', headers=ALICE, status=503)
    assert res.json == {'error': 'backend unavailable, try again later'}


def test_cancel_answers_another_users_job_as_a_job_that_does_not_exist(app):
    running = gate(app, 'first')
    wait_started(app, running)
    queued = gate(app, 'second')
    for suffix in ('?job_class=NoSuchClass', '?job_class=Invoice', ''):
        theirs = app.post(
            f'/immortus/verify/{queued}/cancel{suffix}', headers=BOB, expect_errors=True
        )
        nobodys = app.post(
            f'/immortus/verify/never-was/cancel{suffix}', headers=BOB, expect_errors=True
        )
        assert theirs.status_int == nobodys.status_int
        assert {**theirs.json, 'job_id': 'x'} == {**nobodys.json, 'job_id': 'x'}
    app.registry.gates['first'].set()


class Deep(Job):
    def perform(self):
        nested = []
        for _ in range(5000):
            nested = [nested]
        self.meta['deep'] = nested


@pytest.mark.parametrize('adapter', ['inline', 'async'])
def test_meta_too_deep_for_json_fails_the_job(make_config, adapter):
    config = make_config({'immortus.queue_adapter': adapter})
    config.add_route('start', '/start', request_method='POST')
    config.add_view(
        lambda request: Deep.perform_later(request), route_name='start', renderer='immortus'
    )
    config.add_immortus_job(Deep)
    app = TestApp(config.make_wsgi_app())
    job_id = app.post('/start').json['job_id']
    from tests.support import wait_for

    data = wait_for(
        lambda: (lambda d: d if d['status'] in ('finished', 'failed') else None)(
            app.get(f'/immortus/verify/{job_id}').json
        ),
        message='ended',
    )
    assert data['status'] == 'failed' and data['exception']['type'] == 'TypeError'


def test_huge_numbers_are_refused_at_the_call(make_config):
    from pyramid_immortus.status import finite_number, progress_info

    with pytest.raises(ValueError, match='too large'):
        finite_number(10**400, 'progress current')
    with pytest.raises(ValueError, match='too large'):
        progress_info(10**5000, 10**5000)
    assert progress_info(2**60, 2**61)['percent'] == 50.0


class Blocking:
    """A strategy whose writes hang, as a stalled Redis does."""

    def __init__(self):
        self.beats = []

    def completed(self, job_id):
        return False

    def job_failed(self, job_id, exc):
        time.sleep(30)

    def job_heartbeat(self, job_id, deadline):
        self.beats.append(time.monotonic())


def test_a_shutdown_is_bounded_even_when_the_store_hangs(make_config):
    from pyramid_immortus.adapters.async_ import WRITE_SECONDS, AsyncAdapter

    config = make_config({'immortus.queue_adapter': 'inline'})
    config.add_tracking_strategy('blocking', Blocking)
    config.add_immortus_job(Gate, tracking_strategy='blocking')
    config.commit()
    config.registry.gates = {'hold': threading.Event()}
    adapter = AsyncAdapter(workers=1, lease=0.3, shutdown_grace=1.0)
    jobs = [Gate(config.registry, arguments=('hold',)) for _ in range(4)]
    for job in jobs:
        adapter.enqueue(job)
    time.sleep(0.2)
    strategy = jobs[0].tracking_strategy
    started = time.monotonic()
    adapter.shutdown()
    took = time.monotonic() - started
    assert 1.0 <= took < 1.0 + WRITE_SECONDS + 0.5
    # the running job kept its heartbeats through the grace
    assert any(beat > started + 0.5 for beat in strategy.beats)
    config.registry.gates['hold'].set()


class OddReads:
    def completed(self, job_id):
        return False

    def meta(self, job_id):
        return {'status': ['not', 'a', 'state']}


def test_odd_strategy_answers_never_break_a_view(make_config):
    class Missing:
        def completed(self, job_id):
            return False

        def read_many(self, job_ids):
            return {}

    config = make_config({'immortus.queue_adapter': 'async'})
    config.add_tracking_strategy('odd', OddReads)
    config.add_tracking_strategy('missing', Missing)
    config.add_immortus_job(Victim, tracking_strategy='odd')
    config.add_immortus_job(Invoice, tracking_strategy='missing')
    config.registry.ran = []
    app = TestApp(config.make_wsgi_app())
    res = app.post('/immortus/verify/abc/cancel?job_class=Victim', expect_errors=True)
    assert res.content_type == 'application/json' and res.status_int in (404, 409, 501)
    jobs = app.get('/immortus/verify?ids=a,b&job_class=Invoice').json['jobs']
    assert jobs['a'] == {'job_id': 'a', 'error': 'tracking strategy error', 'code': 500}


@pytest.mark.parametrize(
    'content_type, body',
    [
        ('multipart/form-data', b'--x\r\n'),
        ('application/x-www-form-urlencoded; charset=utf-16', b'\xff\xfe\x00'),
        ('application/x-www-form-urlencoded; charset=no-such-charset', b'a=b'),
    ],
)
def test_a_cancel_body_that_does_not_parse_is_a_json_400(make_config, content_type, body):
    app = make_app(make_config, session=True)
    res = app.post(
        '/immortus/verify/abc/cancel', body, headers={'Content-Type': content_type}, status=400
    )
    assert res.json == {'job_id': 'abc', 'error': 'bad CSRF token'}


class Exploding:
    strategy_name = 'memory'

    def __init__(self, error):
        self.error = error

    def enqueue(self, job):
        raise self.error


@pytest.mark.parametrize(
    'error, status, message',
    [
        (RuntimeError('postgresql://u:s3cret@db/app'), 500, 'the job could not be enqueued'),
        (
            __import__('redis').exceptions.ReadOnlyError('READONLY replica'),
            503,
            'backend unavailable, try again later',
        ),
    ],
)
def test_an_adapter_failure_is_a_fixed_json_answer(make_config, caplog, error, status, message):
    config = make_config({'immortus.queue_adapter': 'exploding'})
    config.add_queue_adapter('exploding', lambda: Exploding(error))
    config.add_route('start', '/start/{name}', request_method='POST')
    config.add_view(start, route_name='start', renderer='immortus')
    config.add_immortus_job(Victim)
    config.registry.ran = []
    app = TestApp(config.make_wsgi_app())
    with caplog.at_level(logging.ERROR):
        res = app.post('/start/victim', status=status)
    assert res.json == {'error': message}
    assert 's3cret' not in res.text
