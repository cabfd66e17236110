"""POST {verify_path}/{job_id}/cancel, on the async and rq adapters."""

import threading

import pytest
from pyramid.csrf import CookieCSRFStoragePolicy, get_csrf_token
from webtest import TestApp

from pyramid_immortus import Job
from tests.support import create, verify, wait_for


class Gate(Job):
    """Runs until its event is set (the test holds the event)."""

    def perform(self, key):
        self.registry.gates[key].wait(10)


class Parked:
    """An adapter that keeps jobs queued and cannot cancel."""

    strategy_name = 'memory'

    def enqueue(self, job):
        pass


def create_gate(request):
    return Gate.perform_later(request, request.params['key'])


def token(request):
    return {'token': get_csrf_token(request)}


@pytest.fixture
def make_app(make_config):
    def make(csrf=False, **settings):
        config = make_config(
            {'immortus.queue_adapter': 'async', 'immortus.async_workers': '1', **settings}
        )
        config.registry.gates = {}
        config.add_queue_adapter('parked', Parked)
        if csrf:
            config.set_csrf_storage_policy(CookieCSRFStoragePolicy())
            config.set_default_csrf_options(require_csrf=True)
            config.add_route('token', '/token')
            config.add_view(token, route_name='token', renderer='json')
        config.add_route('create', '/create', request_method='POST')
        config.add_view(create_gate, route_name='create', renderer='immortus', require_csrf=False)
        config.add_immortus_job(Gate)
        app = TestApp(config.make_wsgi_app())
        app.gates = config.registry.gates
        return app

    return make


def start_gate(app, key):
    app.gates[key] = threading.Event()
    return app.post(f'/create?key={key}').json['job_id']


def status(app, job_id):
    return app.get(f'/immortus/verify/{job_id}').json['status']


def test_async_cancel_queued_running_ended_unknown(make_app):
    app = make_app()
    running = start_gate(app, 'first')
    queued = start_gate(app, 'second')
    wait_for(lambda: status(app, running) == 'started')
    assert status(app, queued) == 'queued'

    res = app.post(f'/immortus/verify/{queued}/cancel')
    assert res.json == {'job_id': queued, 'cancelled': True}
    data = app.get(f'/immortus/verify/{queued}').json
    assert data['status'] == 'failed' and data['exception']['type'] == 'Cancelled'
    assert data['error'] == 'Cancelled: cancelled on request'

    res = app.post(f'/immortus/verify/{running}/cancel', status=202)
    assert res.json == {'job_id': running, 'stopping': True}
    assert status(app, running) == 'started'  # it stops when it next reports progress
    app.gates['first'].set()
    # a job that never calls progress runs to its end, and cannot end finished
    wait_for(lambda: status(app, running) == 'failed')
    assert app.get(f'/immortus/verify/{running}').json['exception'] == {
        'type': 'Cancelled',
        'message': 'cancelled on request',
    }
    assert app.post(f'/immortus/verify/{running}/cancel', status=409).json == {
        'job_id': running,
        'error': 'the job has ended',
    }
    assert (
        app.post(f'/immortus/verify/{queued}/cancel', status=409).json['error']
        == 'the job has ended'
    )
    assert app.post('/immortus/verify/never-seen/cancel', status=404).json['status'] == 'unknown'
    app.post('/immortus/verify/bad!id/cancel', status=400)


def test_an_adapter_without_cancel_is_501(make_app):
    app = make_app(**{'immortus.queue_adapter': 'parked'})
    job_id = start_gate(app, 'never-runs')
    res = app.post(f'/immortus/verify/{job_id}/cancel', status=501)
    assert res.json == {'job_id': job_id, 'error': 'the queue adapter cannot cancel jobs'}


def test_cancel_honours_require_csrf(make_app):
    app = make_app(csrf=True)
    running = start_gate(app, 'first')
    queued = start_gate(app, 'second')
    res = app.post(f'/immortus/verify/{queued}/cancel', status=400)
    assert res.json == {'job_id': queued, 'error': 'bad CSRF token'}
    assert status(app, queued) == 'queued'
    csrf = app.get('/token').json['token']
    app.post(f'/immortus/verify/{queued}/cancel', headers={'X-CSRF-Token': csrf})
    assert status(app, queued) == 'failed'
    app.gates['first'].set()
    wait_for(lambda: status(app, running) == 'finished')


def test_rq_cancel_a_queued_job(make_rq_app, redis_db):
    app, _ = make_rq_app()
    job_id = create(app, 'Add', 1, 2)['job_id']
    assert app.post(f'/immortus/verify/{job_id}/cancel').json['cancelled'] is True
    data = verify(app, job_id)
    assert data['status'] == 'failed' and data['rq_status'] == 'canceled'
    assert data['exception'] == {'type': 'Cancelled', 'message': 'cancelled on request'}
    assert redis_db.llen('rq:queue:itest') == 0


@pytest.mark.parametrize('strategy', ['rq', 'redis'])
def test_rq_stop_a_running_job(make_rq_app, redis_db, processes, strategy):
    app, ini = make_rq_app(**{'immortus.tracking_strategy': strategy})
    job_id = create(app, 'Slow', 30, 30)['job_id']
    worker = processes.worker(ini)
    wait_for(lambda: verify(app, job_id)['status'] == 'started', message='start')
    res = app.post(f'/immortus/verify/{job_id}/cancel', status=202)
    assert res.json == {'job_id': job_id, 'stopping': True}
    data = wait_for(
        lambda: (lambda d: d if d['status'] == 'failed' else None)(verify(app, job_id)),
        timeout=15,
        message='stopped',
    )
    assert data['exception']['type'] == 'Cancelled'
    if strategy == 'rq':
        wait_for(lambda: verify(app, job_id)['rq_status'] == 'stopped', message='rq stopped')
    assert worker.poll() is None  # the worker lives on; only its work horse was killed
    later = create(app, 'Add', 2, 2)['job_id']
    wait_for(lambda: verify(app, later)['completed'], message='the next job')
