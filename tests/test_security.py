"""Who may see or cancel a job: owners, permissions, anonymous callers."""

import pytest
from webtest import TestApp

from pyramid_immortus import Job
from tests.support import ALICE, BOB, REDIS_URL, UNKNOWN, HeaderSecurityPolicy, Root


class Noop(Job):
    def perform(self):
        pass


def create(request):
    return Noop.perform_later(request)


def make_app(make_config, **settings):
    config = make_config({'immortus.queue_adapter': 'inline', **settings})
    config.set_root_factory(Root)
    config.set_security_policy(HeaderSecurityPolicy())
    config.add_route('create', '/create', request_method='POST')
    config.add_view(create, route_name='create', renderer='immortus')
    config.add_immortus_job(Noop)
    return TestApp(config.make_wsgi_app())


def test_owner_only_hides_a_job_from_everyone_but_its_owner(make_config):
    app = make_app(make_config, **{'immortus.verify_owner_only': 'true'})
    job_id = app.post('/create', headers=ALICE).json['job_id']
    data = app.get(f'/immortus/verify/{job_id}', headers=ALICE).json
    assert data['completed'] is True and 'owner' not in data
    for headers in (BOB, {}):
        res = app.get(f'/immortus/verify/{job_id}', headers=headers, status=404)
        assert res.json == {'job_id': job_id, **UNKNOWN}
        assert res.json == app.get(
            '/immortus/verify/never-seen', headers=headers, status=404
        ).json | {'job_id': job_id}
    batch = app.get(f'/immortus/verify?ids={job_id}', headers=BOB).json['jobs'][job_id]
    assert batch == {'job_id': job_id, **UNKNOWN, 'code': 404}
    app.post(f'/immortus/verify/{job_id}/cancel', headers=BOB, status=404)


def test_a_job_without_owner_is_visible_to_all(make_config):
    app = make_app(make_config, **{'immortus.verify_owner_only': 'true'})
    job_id = app.post('/create').json['job_id']
    assert app.get(f'/immortus/verify/{job_id}', headers=BOB).json['completed'] is True


def test_without_owner_only_anyone_with_the_id_sees_it(make_config):
    app = make_app(make_config)
    job_id = app.post('/create', headers=ALICE).json['job_id']
    data = app.get(f'/immortus/verify/{job_id}', headers=BOB).json
    assert data['completed'] is True and 'owner' not in data


def test_verify_permission_denial_is_json_403(make_config):
    app = make_app(make_config, **{'immortus.verify_permission': 'view-jobs'})
    job_id = app.post('/create', headers=ALICE).json['job_id']
    for url in (
        f'/immortus/verify/{job_id}',
        f'/immortus/verify/{job_id}/Noop',
        f'/immortus/verify?ids={job_id}',
    ):
        res = app.get(url, headers=ALICE, status=403)
        assert res.content_type == 'application/json'
        assert res.json['error'] == 'forbidden'
        app.get(url, status=403)
    res = app.post(f'/immortus/verify/{job_id}/cancel', headers=ALICE, status=403)
    assert res.json == {'job_id': job_id, 'error': 'forbidden'}
    viewer = {'X-User': 'carol', 'X-Roles': 'viewer'}
    assert app.get(f'/immortus/verify/{job_id}', headers=viewer).json['completed'] is True


@pytest.mark.parametrize('strategy', ['rq', 'redis'])
def test_owner_is_recorded_where_every_web_process_sees_it(make_config, redis_db, strategy):
    settings = {
        'immortus.verify_owner_only': 'true',
        'immortus.redis_url': REDIS_URL,
        'immortus.tracking_strategy': strategy,
        'immortus.queue_adapter': 'rq',
    }
    app = make_app(make_config, **settings)
    job_id = app.post('/create', headers=ALICE).json['job_id']
    key = {'rq': f'rq:job:{job_id}', 'redis': f'immortus:job:{job_id}'}[strategy]
    field = {'rq': 'immortus:owner', 'redis': 'owner'}[strategy]
    assert redis_db.hget(key, field) == b'alice'
    # a second web process, built from the same settings, applies the rule
    other = make_app(make_config, **settings)
    assert other.get(f'/immortus/verify/{job_id}', headers=ALICE).json['status'] == 'queued'
    assert other.get(f'/immortus/verify/{job_id}', headers=BOB, status=404).json == {
        'job_id': job_id,
        **UNKNOWN,
    }
