"""Functional tests of the create renderer and the default verify view."""

import logging

import pytest
from webtest import TestApp

from pyramid_immortus import BackendUnavailable, Job, render_immortus, tracking_strategy


class Quick(Job):
    def perform(self, n):
        self.progress(n, 10, 'done')
        return n


class Failing(Job):
    def perform(self):
        raise RuntimeError('it broke')


class SeedStrategy:
    """As in the Rails documentation: completed? plus meta."""

    def __init__(self):
        self.done = set()

    def job_finished(self, job_id):
        self.done.add(job_id)

    def completed(self, job_id):
        return job_id in self.done

    def meta(self, job_id):
        return {'progress': 100, 'job_id': 'spoofed', 'completed': 'spoofed'}


class Raising:
    def completed(self, job_id):
        raise KeyError('secret internal detail')


class Unavailable:
    def completed(self, job_id):
        raise BackendUnavailable('redis is down')


@tracking_strategy('seed')
class SeedTracked(Job):
    def perform(self):
        pass


class DownAdapter:
    strategy_name = 'memory'

    def enqueue(self, job):
        raise BackendUnavailable('redis: Error 111 connecting to db.internal:6379')


def create_quick(request):
    return Quick.perform_later(request, int(request.params.get('n', 1)))


def create_failing(request):
    return Failing.perform_later(request)


def create_seed(request):
    return SeedTracked.perform_later(request)


def create_nothing(request):
    return {'no': 'job'}


def create_by_hand(request):
    return render_immortus(request, Quick.perform_later(request, 2))


def job_routes(config):
    for name, view in [
        ('quick', create_quick),
        ('failing', create_failing),
        ('seed', create_seed),
        ('nothing', create_nothing),
    ]:
        config.add_route(name, '/create/' + name, request_method='POST')
        config.add_view(view, route_name=name, renderer='immortus')
    config.add_route('by_hand', '/create/by_hand', request_method='POST')
    config.add_view(create_by_hand, route_name='by_hand')


@pytest.fixture
def make_app(make_config):
    def make(settings=None):
        config = make_config({'immortus.queue_adapter': 'inline', **(settings or {})})
        config.add_tracking_strategy('seed', SeedStrategy)
        config.add_tracking_strategy('raising', Raising)
        config.add_tracking_strategy('unavailable', Unavailable)
        config.add_queue_adapter('down', DownAdapter)
        config.scan('tests.test_views')
        config.add_immortus_jobs(job_routes)
        return TestApp(config.make_wsgi_app())

    return make


@pytest.fixture
def app(make_app):
    return make_app()


def test_create_answers_job_id_and_class(app):
    res = app.post('/create/quick?n=3')
    assert res.status_int == 200 and res.content_type == 'application/json'
    assert set(res.json) == {'job_id', 'job_class'}
    assert res.json['job_class'] == 'Quick'


def test_create_without_a_job_is_500_empty(app):
    res = app.post('/create/nothing', status=500)
    assert res.json == {}


def test_render_immortus_by_hand(app):
    res = app.post('/create/by_hand')
    assert res.json['job_class'] == 'Quick' and res.headers['Cache-Control'] == 'no-store'


def test_create_with_backend_down_is_503_json(make_app):
    app = make_app({'immortus.queue_adapter': 'down'})
    res = app.post('/create/quick', status=503)
    assert res.json == {'error': 'backend unavailable, try again later'}
    assert '6379' not in res.text


def test_verify_finished_job(app):
    job_id = app.post('/create/quick?n=7').json['job_id']
    res = app.get(f'/immortus/verify/{job_id}')
    assert res.headers['Cache-Control'] == 'no-store'
    data = res.json
    assert data['job_id'] == job_id
    assert data['completed'] is True and data['status'] == 'finished'
    assert data['progress']['current'] == 7


def test_verify_with_job_class(app):
    job_id = app.post('/create/quick').json['job_id']
    assert app.get(f'/immortus/verify/{job_id}/Quick').json['completed'] is True


def test_verify_failed_job(app, caplog):
    with caplog.at_level(logging.CRITICAL):
        job_id = app.post('/create/failing').json['job_id']
    data = app.get(f'/immortus/verify/{job_id}').json
    assert data['completed'] is False and data['failed'] is True
    assert data['error'] == 'RuntimeError: it broke'
    assert 'Traceback' not in str(data)


def test_seed_strategy_gives_completed_and_meta_that_cannot_spoof(app):
    job_id = app.post('/create/seed').json['job_id']
    data = app.get(f'/immortus/verify/{job_id}/SeedTracked').json
    assert data == {'job_id': job_id, 'completed': True, 'progress': 100}
    # without the class, the default strategy does not know it
    assert app.get(f'/immortus/verify/{job_id}', status=404).json['error'] == 'unknown job'


def test_unknown_job_is_404(app):
    res = app.get('/immortus/verify/never-seen', status=404)
    assert res.json == {'job_id': 'never-seen', 'status': 'unknown', 'error': 'unknown job'}
    assert res.headers['Cache-Control'] == 'no-store'


def test_unknown_job_class_is_404(app):
    res = app.get('/immortus/verify/abc/os.system', status=404)
    assert res.json == {'job_id': 'abc', 'error': 'unknown job class'}


@pytest.mark.parametrize(
    'job_id', ['x' * 65, 'semi;colon', 'a%20b', '%00', '%C3%A9', 'a:b', 'a%2Cb']
)
def test_malformed_job_id_is_400(app, job_id):
    res = app.get('/immortus/verify/' + job_id, status=400)
    assert res.json['error'] == 'malformed job id'
    assert 'job_id' in res.json


def test_64_characters_are_fine(app):
    app.get('/immortus/verify/' + 'a' * 64, status=404)


def test_strategy_error_is_500_short_and_logged(make_app, caplog):
    app = make_app({'immortus.tracking_strategy': 'raising'})
    with caplog.at_level(logging.ERROR):
        res = app.get('/immortus/verify/abc', status=500)
    assert res.json == {'job_id': 'abc', 'error': 'tracking strategy error'}
    assert 'secret internal detail' in caplog.text


def test_backend_unavailable_on_verify_is_503(make_app):
    app = make_app({'immortus.tracking_strategy': 'unavailable'})
    res = app.get('/immortus/verify/abc', status=503)
    assert res.json == {'job_id': 'abc', 'error': 'backend unavailable'}


def test_verify_refuses_post(app):
    app.post('/immortus/verify/abc', status=404)


def test_verify_path_setting(make_app):
    app = make_app({'immortus.verify_path': '/jobs/status'})
    job_id = app.post('/create/quick').json['job_id']
    assert app.get(f'/jobs/status/{job_id}').json['completed'] is True
    app.get(f'/immortus/verify/{job_id}', status=404)


def test_static_client_is_served(app):
    res = app.get('/immortus-static/immortus.js')
    assert res.content_type in ('application/javascript', 'text/javascript')
