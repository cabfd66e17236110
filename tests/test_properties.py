"""Whatever a client sends to the verify views, the answer is never a 5xx
and never a traceback (hypothesis)."""

from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webtest import TestApp

from pyramid_immortus import Job
from tests.support import REDIS_URL, empty_test_db


class Known(Job):
    def perform(self):
        pass


segments = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=40),
    st.from_regex(r'[A-Za-z0-9_.-]{1,70}', fullmatch=True),
    st.sampled_from(['Known', 'a' * 64, 'a' * 65, '..', '.', '%', '%00', '/', '?', '#']),
)


def url_segment(value):
    return quote(value, safe='')


@pytest.fixture(scope='module', params=['memory', 'rq'])
def app(request):
    from pyramid.config import Configurator

    settings = {'immortus.queue_adapter': 'inline', 'immortus.verify_owner_only': 'true'}
    if request.param == 'rq':
        empty_test_db().close()
        settings.update({'immortus.queue_adapter': 'rq', 'immortus.redis_url': REDIS_URL})
    config = Configurator(settings=settings)
    config.include('pyramid_immortus')
    config.add_immortus_job(Known)
    app = TestApp(config.make_wsgi_app())
    Known.perform_later(config.registry)
    return app


def check(res):
    assert res.status_int < 500, res
    assert b'Traceback' not in res.body
    if res.content_type == 'application/json':
        assert isinstance(res.json, dict)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(job_id=segments, job_class=st.one_of(st.none(), segments))
def test_single_verify(app, job_id, job_class):
    url = '/immortus/verify/' + url_segment(job_id)
    if job_class is not None:
        url += '/' + url_segment(job_class)
    res = app.get(url, expect_errors=True)
    check(res)
    if res.status_int == 200:
        assert res.json['job_id'] == (job_id if isinstance(job_id, str) else job_id.decode())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ids=st.lists(segments, max_size=120), job_class=st.one_of(st.none(), segments))
def test_batch_verify(app, ids, job_class):
    texts = [i if isinstance(i, str) else i.decode('latin-1') for i in ids]
    query = {'ids': ','.join(texts)}
    if job_class is not None:
        query['job_class'] = (
            job_class if isinstance(job_class, str) else job_class.decode('latin-1')
        )
    res = app.get('/immortus/verify?' + urlencode(query), expect_errors=True)
    check(res)
    if res.status_int == 200:
        for entry in res.json['jobs'].values():
            assert entry['code'] in (200, 400, 404)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(job_id=segments)
def test_cancel(app, job_id):
    check(app.post('/immortus/verify/' + url_segment(job_id) + '/cancel', expect_errors=True))
