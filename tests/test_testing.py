"""``pyramid_immortus.testing``: jobs recorded, run when the test says so,
against the example's own views and against small applications."""

import os
import pickle
import re
import sys
import threading
import time
import types

import pytest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.paster import get_appsettings
from webtest import TestApp

import immortus_example
import immortus_example.jobs
from immortus_example.jobs import GenerateInvoiceJob, QuickJob, SlowJob
from pyramid_immortus import Job, find_tracking_strategy, get_settings
from pyramid_immortus.catalog import get_catalog
from pyramid_immortus.interfaces import IQueueAdapter
from pyramid_immortus.strategies.memory import MemoryStrategy
from pyramid_immortus.strategies.redis import RedisStrategy
from pyramid_immortus.testing import (
    RecordingAdapter,
    assert_enqueued_jobs,
    assert_enqueued_with,
    clear_enqueued_jobs,
    enqueued_jobs,
    perform_enqueued_jobs,
    performed_jobs,
)
from tests.support import REDIS_URL, ROOT

TESTING = 'pyramid_immortus.testing'
#: nothing listens there: a test that reaches Redis through it fails
NO_REDIS = 'redis://127.0.0.1:1/0'


# -- the example's own application ----------------------------------------


@pytest.fixture
def no_sleep(monkeypatch):
    """The example's jobs sleep to look busy; not in these tests."""
    monkeypatch.setattr(immortus_example.jobs, 'time', types.SimpleNamespace(sleep=lambda s: None))


def example_app(ini, tmp_path, **extra):
    """The example's own ``main`` on the settings of one of its .ini files,
    with the testing include in ``pyramid.includes`` (so it runs before the
    example includes ``pyramid_immortus``)."""
    settings = dict(get_appsettings(os.path.join(ROOT, 'example', ini)))
    settings.update(
        {
            'pyramid.includes': TESTING,
            'example.sqlite_path': str(tmp_path / 'example.sqlite'),
            **extra,
        }
    )
    wsgi = immortus_example.main({}, **settings)
    return wsgi, TestApp(wsgi)


@pytest.fixture(params=['development.ini', pytest.param('production.ini', marks=pytest.mark.redis)])
def example(request, tmp_path, no_sleep):
    extra = {}
    if request.param == 'production.ini':
        request.getfixturevalue('redis_db')
        extra['immortus.redis_url'] = REDIS_URL
    return (request.param, *example_app(request.param, tmp_path, **extra))


def verify(app, job, status=200):
    return app.get(f'/immortus/verify/{job["job_id"]}', status=status).json


def test_the_example_views_record_jobs_that_verify_as_queued(example):
    ini, wsgi, app = example
    jobs = {name: app.post(f'/jobs/{name}').json for name in ('quick', 'slow', 'failing')}
    invoice = app.post('/jobs/invoice').json
    time.sleep(0.05)  # the example's own adapter (async threads) would have run them
    assert [j.job_class for j in enqueued_jobs(wsgi)] == [
        'QuickJob',
        'SlowJob',
        'FailingJob',
        'GenerateInvoiceJob',
    ]
    assert [j.job_id for j in enqueued_jobs(wsgi)] == [
        *(job['job_id'] for job in jobs.values()),
        invoice['job_id'],
    ]
    for job in jobs.values():
        assert verify(app, job)['status'] == 'queued'
    # the invoice job keeps its inline sqlite strategy (the custom verify route)
    assert app.get(f'/job_custom_verify/{invoice["job_id"]}').json == {
        'job_id': invoice['job_id'],
        'completed': False,
        'failed': False,
        'percentage': 0,
    }
    assert_enqueued_jobs(wsgi, 4)
    assert_enqueued_jobs(wsgi, 1, only=SlowJob)
    assert_enqueued_with(wsgi, SlowJob, args=(), kwargs={'seconds': 5.0})
    queue = 'immortus-example' if ini == 'production.ini' else 'default'
    assert {j.queue for j in enqueued_jobs(wsgi)} == {queue}
    assert performed_jobs(wsgi) == []


def test_the_strategies_stay_as_the_example_configured_them(example):
    ini, wsgi, app = example
    registry = wsgi.registry
    assert get_settings(registry).queue_adapter == 'testing'
    expected = RedisStrategy if ini == 'production.ini' else MemoryStrategy
    assert type(find_tracking_strategy(registry, QuickJob)) is expected
    assert (
        type(find_tracking_strategy(registry, GenerateInvoiceJob)).__name__
        == 'MyCustomTrackingStrategy'
    )
    adapter = registry.getUtility(IQueueAdapter, name='testing')
    assert adapter.replaces == ('rq' if ini == 'production.ini' else 'async')


def test_perform_enqueued_jobs_runs_the_example_jobs_to_their_end(example):
    _, wsgi, app = example
    quick, slow, failing = (app.post(f'/jobs/{n}').json for n in ('quick', 'slow', 'failing'))
    invoice = app.post('/jobs/invoice').json
    ran = perform_enqueued_jobs(wsgi, raise_errors=False)
    assert [j.job_class for j in ran] == ['QuickJob', 'SlowJob', 'FailingJob', 'GenerateInvoiceJob']
    assert [type(j.error) for j in ran] == [type(None), type(None), RuntimeError, type(None)]
    assert performed_jobs(wsgi) == ran and enqueued_jobs(wsgi) == []
    assert verify(app, quick)['status'] == 'finished'
    done = verify(app, slow)
    assert done['status'] == 'finished' and done['meta'] == {'rows': 20000}
    assert done['progress']['percent'] == 100.0
    data = verify(app, failing)
    assert data['status'] == 'failed'
    assert data['exception'] == {
        'type': 'RuntimeError',
        'message': 'the report could not be generated',
    }
    assert app.get(f'/job_custom_verify/{invoice["job_id"]}').json['completed'] is True


def test_a_failing_example_job_raises_by_default_and_the_rest_waits(example):
    _, wsgi, app = example
    failing = app.post('/jobs/failing').json
    quick = app.post('/jobs/quick').json
    with pytest.raises(RuntimeError, match='the report could not be generated'):
        perform_enqueued_jobs(wsgi)
    assert verify(app, failing)['status'] == 'failed'
    assert verify(app, quick)['status'] == 'queued'
    assert [j.job_class for j in enqueued_jobs(wsgi)] == ['QuickJob']
    assert [j.job_class for j in perform_enqueued_jobs(wsgi)] == ['QuickJob']
    assert [j.job_class for j in performed_jobs(wsgi)] == ['FailingJob', 'QuickJob']


def test_the_example_cancel_view_takes_back_a_recorded_job(example):
    _, wsgi, app = example
    quick = app.post('/jobs/quick').json
    slow = app.post('/jobs/slow').json
    url = f'/immortus/verify/{quick["job_id"]}/cancel'
    assert app.post(url + '?job_class=SlowJob', status=404).json['error'] == 'unknown job'
    assert app.post(url).json == {'job_id': quick['job_id'], 'cancelled': True}
    data = verify(app, quick)
    assert data['status'] == 'failed' and data['exception']['type'] == 'Cancelled'
    assert [j.job_id for j in enqueued_jobs(wsgi)] == [slow['job_id']]
    perform_enqueued_jobs(wsgi)
    assert (
        app.post(f'/immortus/verify/{slow["job_id"]}/cancel', status=409).json['error']
        == 'the job has ended'
    )
    assert [j.job_class for j in performed_jobs(wsgi)] == ['SlowJob']


# -- small applications ----------------------------------------------------


class Leaf(Job):
    def perform(self, n, label='leaf'):
        self.progress(1, 1, f'{label} {n}')


class Branch(Job):
    queue = 'branches'

    def perform(self, n):
        for i in range(n):
            Leaf.perform_later(self.registry, i, label='from branch')


class Loop(Job):
    def perform(self):
        Loop.perform_later(self.registry)


class Boom(Job):
    def perform(self):
        raise ValueError('boom')


class InlineRQ(Job):
    """Registered with the inline strategy ``rq`` (see INLINE_RQ)."""

    def perform(self):
        pass


INLINE_RQ = (InlineRQ, 'rq')


def make_app(settings=None, include_testing=True, jobs=(Leaf, Branch, Loop, Boom)):
    config = Configurator(settings=dict(settings or {}))
    config.include('pyramid_immortus')
    if include_testing:
        config.include(TESTING)
    for job in jobs:
        job, strategy = job if isinstance(job, tuple) else (job, None)
        config.add_immortus_job(job, tracking_strategy=strategy)

    def create(request):
        body = request.json_body
        job = get_catalog(request.registry).get(body['job'])
        return job.perform_later(request, *body.get('args', ()), **body.get('kwargs', {}))

    config.add_route('create', '/create', request_method='POST')
    config.add_view(create, route_name='create', renderer='immortus')
    wsgi = config.make_wsgi_app()
    return wsgi, TestApp(wsgi)


def test_an_inferred_strategy_becomes_memory_and_redis_is_never_reached():
    wsgi, app = make_app({'immortus.queue_adapter': 'rq', 'immortus.redis_url': NO_REDIS})
    assert type(find_tracking_strategy(wsgi.registry)) is MemoryStrategy
    job = app.post_json('/create', {'job': 'Leaf', 'args': [1]}).json
    assert verify(app, job)['status'] == 'queued'
    perform_enqueued_jobs(wsgi)
    assert verify(app, job)['progress']['message'] == 'leaf 1'


@pytest.mark.parametrize('where', ['setting', 'inline'])
def test_a_strategy_that_only_the_rq_adapter_feeds_becomes_memory(where):
    settings = {'immortus.queue_adapter': 'rq', 'immortus.redis_url': NO_REDIS}
    if where == 'setting':
        settings['immortus.tracking_strategy'] = 'rq'
    wsgi, app = make_app(settings, jobs=(Leaf, INLINE_RQ))
    assert get_catalog(wsgi.registry).inline_strategy(InlineRQ) == 'memory'
    assert get_settings(wsgi.registry).tracking_strategy == (
        'memory' if where == 'setting' else None
    )
    assert type(find_tracking_strategy(wsgi.registry, InlineRQ)) is MemoryStrategy
    assert type(find_tracking_strategy(wsgi.registry)) is MemoryStrategy
    job = app.post_json('/create', {'job': 'InlineRQ'}).json
    assert verify(app, job)['status'] == 'queued'
    perform_enqueued_jobs(wsgi)
    assert app.get(f'/immortus/verify/{job["job_id"]}/InlineRQ').json['status'] == 'finished'


def test_without_the_include_an_inline_rq_strategy_is_still_refused():
    with pytest.raises(ConfigurationError, match='reads the job records of rq'):
        make_app({'immortus.queue_adapter': 'async'}, include_testing=False, jobs=(INLINE_RQ,))


def test_arguments_the_real_adapter_cannot_carry_still_fail_in_perform_later():
    wsgi, _ = make_app({'immortus.queue_adapter': 'rq', 'immortus.redis_url': NO_REDIS})
    with pytest.raises(TypeError, match='must pickle'):
        Leaf.perform_later(wsgi.registry, threading.Lock())
    assert enqueued_jobs(wsgi) == []
    wsgi, _ = make_app({'immortus.queue_adapter': 'inline'})
    Leaf.perform_later(wsgi.registry, threading.Lock())  # inline carries anything
    with pytest.raises(TypeError):
        pickle.dumps(enqueued_jobs(wsgi)[0].arguments)


def test_jobs_that_jobs_enqueue_run_too_in_order():
    wsgi, app = make_app()
    app.post_json('/create', {'job': 'Branch', 'args': [2]})
    app.post_json('/create', {'job': 'Leaf', 'args': [9], 'kwargs': {'label': 'direct'}})
    first = enqueued_jobs(wsgi)
    assert [(j.job_class, j.arguments, j.kwargs, j.queue, j.scheduled_at) for j in first] == [
        ('Branch', (2,), {}, 'branches', None),
        ('Leaf', (9,), {'label': 'direct'}, 'default', None),
    ]
    ran = perform_enqueued_jobs(wsgi)
    assert [(j.job_class, j.arguments) for j in ran] == [
        ('Branch', (2,)),
        ('Leaf', (9,)),
        ('Leaf', (0,)),
        ('Leaf', (1,)),
    ]
    assert ran[2].kwargs == {'label': 'from branch'}
    assert enqueued_jobs(wsgi) == [] and perform_enqueued_jobs(wsgi) == []


def test_only_runs_the_jobs_of_a_class():
    wsgi, _ = make_app()
    Leaf.perform_later(wsgi.registry, 1)
    Boom.perform_later(wsgi.registry)
    Leaf.perform_later(wsgi.registry, 2)
    assert [j.arguments for j in perform_enqueued_jobs(wsgi, only=Leaf)] == [(1,), (2,)]
    assert [j.job_class for j in enqueued_jobs(wsgi)] == ['Boom']


def test_a_job_that_enqueues_itself_for_ever_is_stopped():
    wsgi, _ = make_app()
    Loop.perform_later(wsgi.registry)
    with pytest.raises(RuntimeError, match='ran 5 jobs and more are enqueued'):
        perform_enqueued_jobs(wsgi, limit=5)
    assert len(performed_jobs(wsgi)) == 5 and len(enqueued_jobs(wsgi)) == 1


def test_clear_enqueued_jobs():
    wsgi, app = make_app()
    job = app.post_json('/create', {'job': 'Leaf', 'args': [1]}).json
    assert [j.job_id for j in clear_enqueued_jobs(wsgi)] == [job['job_id']]
    assert enqueued_jobs(wsgi) == [] and perform_enqueued_jobs(wsgi) == []
    assert verify(app, job)['status'] == 'queued'  # it never ran


def test_assertions_list_what_was_enqueued():
    wsgi, _ = make_app()
    Leaf.perform_later(wsgi.registry, 1, label='a')
    Branch.perform_later(wsgi.registry, 3)
    assert [j.arguments for j in assert_enqueued_jobs(wsgi, 1, only=Leaf)] == [(1,)]
    assert assert_enqueued_jobs(wsgi, 2, only=(Leaf, 'Branch'))
    with pytest.raises(AssertionError) as info:
        assert_enqueued_jobs(wsgi, 2, only=Leaf)
    assert str(info.value) == (
        'expected 2 enqueued jobs of Leaf, found 1; enqueued:\n'
        "  Leaf(1, label='a') on queue 'default'\n"
        "  Branch(3) on queue 'branches'"
    )
    assert assert_enqueued_with(wsgi, Leaf, args=[1], kwargs={'label': 'a'}).job_class == 'Leaf'
    assert assert_enqueued_with(wsgi, 'Branch', queue='branches').arguments == (3,)
    for wrong in ({'args': (2,)}, {'kwargs': {}}, {'queue': 'other'}):
        with pytest.raises(AssertionError, match=re.escape("Branch(3) on queue 'branches'")):
            assert_enqueued_with(wsgi, Leaf, **wrong)
    with pytest.raises(AssertionError, match=r'expected a Boom job enqueued; enqueued:\n  Leaf'):
        assert_enqueued_with(wsgi, Boom)
    clear_enqueued_jobs(wsgi)
    with pytest.raises(AssertionError, match=r'found 0; enqueued:\n  \(nothing\)$'):
        assert_enqueued_jobs(wsgi, 1)


def test_the_helpers_refuse_an_application_that_does_not_record():
    wsgi, _ = make_app({'immortus.queue_adapter': 'inline'}, include_testing=False)
    with pytest.raises(RuntimeError, match=re.escape("config.include('pyramid_immortus.testing')")):
        enqueued_jobs(wsgi)


def test_the_include_needs_pyramid_immortus():
    config = Configurator(settings={})
    config.include(TESTING)
    with pytest.raises(ConfigurationError, match=re.escape("config.include('pyramid_immortus')")):
        config.commit()


def test_the_adapter_is_a_cancellable_queue_adapter():
    from zope.interface.verify import verifyObject

    from pyramid_immortus.interfaces import ICancellableQueueAdapter

    assert verifyObject(ICancellableQueueAdapter, RecordingAdapter())


def test_a_retry_on_policy_runs_the_job_again():
    from pyramid_immortus import retry_on

    calls = []

    @retry_on(ConnectionError, attempts=3, wait=30)
    class Flaky(Job):
        def perform(self):
            calls.append(self.attempt)
            if len(calls) < 3:
                raise ConnectionError('try again')

    wsgi, app = make_app(jobs=(Flaky,))
    job = Flaky.perform_later(wsgi.registry)
    ran = perform_enqueued_jobs(wsgi)
    assert calls == [1, 2, 3]
    assert [type(j.error) for j in ran] == [ConnectionError, ConnectionError, type(None)]
    assert app.get(f'/immortus/verify/{job.job_id}').json['status'] == 'finished'


def test_scheduled_at_is_the_job_s_own():
    wsgi, _ = make_app()
    Leaf.set(wait=60).perform_later(wsgi.registry, 1)
    (job,) = enqueued_jobs(wsgi)
    assert job.scheduled_at == pytest.approx(time.time() + 60, abs=5)


# -- the README's example is the code that runs ----------------------------


def test_the_readme_testing_example_runs_as_written(tmp_path, monkeypatch):
    text = open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read()
    start = text.index('\n## Testing your application\n')
    section = text[start : text.find('\n## ', start + 1)]
    code = re.search(r'```python\n(.*?)```', section, re.S).group(1)
    assert 'import pyramid_immortus.testing' in code or 'from pyramid_immortus.testing' in code
    (tmp_path / 'readme_testing.py').write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import readme_testing

        tests = [getattr(readme_testing, n) for n in dir(readme_testing) if n.startswith('test_')]
        assert tests
        for test in tests:
            test()
    finally:
        sys.modules.pop('readme_testing', None)
