"""The application of the chaos test (``tests/test_chaos.py``).

Two users (the ``X-User`` header), jobs enqueued on rq and tracked by the
``rq`` strategy (``Quick``, ``Slow``, ``Failing``) or by the ``redis``
strategy (the same jobs with an ``R`` in front), and two Redis lists the
test reads afterwards: every run that reached its end (``RAN``) and every
run that began (``STARTS``), so that a job run twice shows.
"""

import os
import time

from pyramid.config import Configurator

from pyramid_immortus import Job, tracking_strategy
from pyramid_immortus.catalog import get_catalog
from pyramid_immortus.connection import get_redis

#: job ids whose run reached its end (Quick: its only step; Slow: the last)
RAN = 'chaos:ran'
#: job ids whose run began, one entry per run (``job_id pid``)
STARTS = 'chaos:starts'


class HeaderSecurityPolicy:
    """The user is the ``X-User`` header; every permission is granted
    (the chaos app sets no ``immortus.verify_permission``)."""

    def identity(self, request):
        user = request.headers.get('X-User')
        return {'userid': user} if user else None

    def authenticated_userid(self, request):
        identity = request.identity
        return identity['userid'] if identity else None

    def permits(self, request, context, permission):
        return True

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


def _started(job):
    get_redis(job.registry).rpush(STARTS, f'{job.job_id} {os.getpid()}')


class Quick(Job):
    """Records its run and returns."""

    def perform(self):
        _started(self)
        get_redis(self.registry).rpush(RAN, self.job_id)


class Slow(Job):
    """``steps`` progress reports over ``seconds``; records its run at the
    end."""

    def perform(self, seconds, steps=6):
        _started(self)
        for step in range(steps):
            self.progress(step, steps, f'step {step}')
            self.meta['step'] = step
            time.sleep(seconds / steps)
        self.progress(steps, steps, 'done')
        get_redis(self.registry).rpush(RAN, self.job_id)


class Failing(Job):
    """Raises ``ValueError`` (and never records a run's end)."""

    def perform(self, message='chaos'):
        _started(self)
        raise ValueError(message)


@tracking_strategy('redis')
class RQuick(Quick):
    pass


@tracking_strategy('redis')
class RSlow(Slow):
    pass


@tracking_strategy('redis')
class RFailing(Failing):
    pass


def create(request):
    job_class = get_catalog(request.registry).get(request.matchdict['name'])
    body = request.json_body if request.body else {}
    return job_class.perform_later(request, *body.get('args', []))


def routes(config):
    config.add_route('create', '/create/{name}', request_method='POST')
    config.add_view(create, route_name='create', renderer='immortus')


def main(global_config, **settings):
    config = Configurator(settings=settings)
    config.set_security_policy(HeaderSecurityPolicy())
    config.include('pyramid_immortus')
    config.add_immortus_jobs(routes)
    config.scan('tests.chaos_app')
    return config.make_wsgi_app()
