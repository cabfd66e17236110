"""GET {verify_path}?ids=...: many jobs in one request and one read."""

import pytest
import redis
from webtest import TestApp

from pyramid_immortus import Job
from tests.support import REDIS_URL


class Noop(Job):
    def perform(self):
        pass


def create(request):
    return Noop.perform_later(request)


@pytest.fixture
def make_app(make_config):
    def make(**settings):
        config = make_config({'immortus.queue_adapter': 'inline', **settings})
        config.add_route('create', '/create', request_method='POST')
        config.add_view(create, route_name='create', renderer='immortus')
        config.add_immortus_job(Noop)
        return TestApp(config.make_wsgi_app())

    return make


def test_each_id_gets_the_single_verify_answer_and_its_code(make_app):
    app = make_app()
    ids = [app.post('/create').json['job_id'] for _ in range(3)]
    query = ','.join(ids + ['never-seen', 'bad!id'])
    res = app.get(f'/immortus/verify?ids={query}')
    assert res.headers['Cache-Control'] == 'no-store'
    jobs = res.json['jobs']
    assert list(jobs) == ids + ['never-seen', 'bad!id']
    for job_id in ids:
        single = app.get(f'/immortus/verify/{job_id}').json
        assert jobs[job_id] == dict(single, code=200)
    assert jobs['never-seen'] == {
        'job_id': 'never-seen',
        'status': 'unknown',
        'error': 'unknown job',
        'code': 404,
    }
    assert jobs['bad!id'] == {'job_id': 'bad!id', 'error': 'malformed job id', 'code': 400}


def test_job_class_applies_to_all(make_app):
    app = make_app()
    job_id = app.post('/create').json['job_id']
    jobs = app.get(f'/immortus/verify?ids={job_id}&job_class=Noop').json['jobs']
    assert jobs[job_id]['completed'] is True
    jobs = app.get(f'/immortus/verify?ids={job_id}&job_class=Nope').json['jobs']
    assert jobs[job_id] == {'job_id': job_id, 'error': 'unknown job class', 'code': 404}


def test_limits(make_app):
    app = make_app(**{'immortus.batch_max': '3'})
    assert app.get('/immortus/verify?ids=a,b,c').json['jobs']['c']['code'] == 404
    assert app.get('/immortus/verify?ids=a,b,c,d', status=400).json == {
        'error': 'at most 3 ids in one request'
    }
    assert app.get('/immortus/verify?ids=a,a,a,b,c,,').json['jobs'].keys() == {'a', 'b', 'c'}
    for query in ('', '?ids=', '?ids=,,'):
        assert app.get('/immortus/verify' + query, status=400).json['error'].startswith('ids')


class RoundTrips:
    """Counts what the client sends: one send per round trip."""

    def __init__(self, monkeypatch):
        self.sends = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(conn, command, check_health=True):
            self.sends += 1
            return original(conn, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, 'send_packed_command', counting)


@pytest.mark.parametrize('strategy, command', [('rq', 'hmget'), ('redis', 'hgetall')])
def test_one_round_trip_whatever_the_number_of_ids(
    make_app, redis_db, monkeypatch, strategy, command
):
    app = make_app(
        **{
            'immortus.queue_adapter': 'rq',
            'immortus.redis_url': REDIS_URL,
            'immortus.tracking_strategy': strategy,
        }
    )
    ids = [app.post('/create').json['job_id'] for _ in range(50)]
    app.get(f'/immortus/verify?ids={ids[0]}')  # the pool has its connection now
    redis_db.config_resetstat()
    trips = RoundTrips(monkeypatch)
    jobs = app.get('/immortus/verify?ids=' + ','.join(ids + ['missing'])).json['jobs']
    assert trips.sends == 1
    assert all(jobs[job_id]['status'] == 'queued' for job_id in ids)
    assert jobs['missing']['code'] == 404
    stats = {
        k.removeprefix('cmdstat_'): v['calls'] for k, v in redis_db.info('commandstats').items()
    }
    stats.pop('info', None)
    stats.pop('config|resetstat', None)
    assert stats == {command: 51}
