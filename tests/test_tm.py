"""Enqueue after commit, with a real pyramid_tm."""

import logging

import pytest
from webtest import TestApp

from pyramid_immortus import BackendUnavailable, Job, UnknownJob
from pyramid_immortus.catalog import find_tracking_strategy


class Noop(Job):
    def perform(self):
        pass


class Down:
    strategy_name = 'memory'

    def enqueue(self, job):
        raise BackendUnavailable('redis://:hunter2@db.internal:6379 is down')


class Broken:
    strategy_name = 'memory'

    def enqueue(self, job):
        raise RuntimeError('postgresql://app:s3cret@db.internal/app refused')


def known_during_request(request, job_id):
    try:
        find_tracking_strategy(request.registry).report(job_id)
        return True
    except UnknownJob:
        return False


def create(request):
    job = Noop.perform_later(request)
    request.response.headers['X-Known-In-Request'] = str(known_during_request(request, job.job_id))
    if request.params.get('doom'):
        request.tm.doom()
    if request.params.get('fail'):
        raise ValueError('the order was invalid')
    return job


def invalid(exc, request):
    request.response.status_int = 400
    return {'error': str(exc)}


def make_app(make_config, with_tm=True, **settings):
    config = make_config({'immortus.queue_adapter': 'inline', **settings})
    if with_tm:
        config.include('pyramid_tm')
    config.add_queue_adapter('down', Down)
    config.add_queue_adapter('broken', Broken)
    config.add_route('create', '/create', request_method='POST')
    config.add_view(create, route_name='create', renderer='immortus')
    config.add_exception_view(invalid, context=ValueError, renderer='json')
    config.add_immortus_job(Noop)
    return TestApp(config.make_wsgi_app())


def test_enqueued_only_after_the_commit(make_config):
    app = make_app(make_config)
    res = app.post('/create')
    assert res.headers['X-Known-In-Request'] == 'False'
    job_id = res.json['job_id']
    assert app.get(f'/immortus/verify/{job_id}').json['status'] == 'finished'


def test_never_enqueued_when_the_transaction_is_doomed(make_config):
    app = make_app(make_config)
    job_id = app.post('/create?doom=1').json['job_id']
    assert app.get(f'/immortus/verify/{job_id}', status=404).json['status'] == 'unknown'


def test_never_enqueued_when_the_view_fails(make_config):
    config_app = make_app(make_config)
    strategy = find_tracking_strategy(config_app.app.registry)
    config_app.post('/create?fail=1', status=400)
    assert len(strategy) == 0


def test_an_enqueue_failing_after_commit_is_a_503(make_config, caplog):
    app = make_app(make_config, **{'immortus.queue_adapter': 'down'})
    with caplog.at_level(logging.ERROR):
        res = app.post('/create', status=503)
    assert res.json == {'error': 'backend unavailable, try again later'}
    assert res.headers['Cache-Control'] == 'no-store'
    assert 'could not be enqueued after the commit' in caplog.text
    assert 'hunter2' in caplog.text  # the detail goes to the log only


def test_any_other_failure_after_commit_is_a_500_that_tells_nothing(make_config, caplog):
    app = make_app(make_config, **{'immortus.queue_adapter': 'broken'})
    with caplog.at_level(logging.ERROR):
        res = app.post('/create', status=500)
    assert res.json == {'error': 'the job could not be enqueued'}
    assert 's3cret' not in res.text and 's3cret' in caplog.text


@pytest.mark.parametrize('with_tm, setting', [(False, 'true'), (True, 'false')])
def test_otherwise_enqueued_at_once(make_config, with_tm, setting):
    app = make_app(make_config, with_tm=with_tm, **{'immortus.enqueue_after_commit': setting})
    res = app.post('/create')
    assert res.headers['X-Known-In-Request'] == 'True'
