"""The application integration tests serve and run workers against."""

import os
import time

from pyramid.config import Configurator

from pyramid_immortus import Job, retry_on, tracking_strategy
from pyramid_immortus.catalog import get_catalog
from pyramid_immortus.connection import get_redis

RAN = 'immortus-test:ran'


class Add(Job):
    def perform(self, a, b):
        get_redis(self.registry).rpush(RAN, self.job_id)
        return a + b


class Slow(Job):
    def perform(self, seconds, steps=10):
        get_redis(self.registry).set('immortus-test:pid:' + self.job_id, os.getpid())
        for step in range(steps):
            self.progress(step, steps, f'step {step}')
            self.meta['step'] = step
            time.sleep(seconds / steps)
        self.progress(steps, steps, 'done')
        get_redis(self.registry).rpush(RAN, self.job_id)


class Steps(Job):
    """Progress without touching Redis (for the embedded default)."""

    def perform(self, seconds, steps, fail_with=None):
        for step in range(steps):
            self.progress(step + 1, steps, f'step {step + 1} of {steps}')
            time.sleep(seconds / steps)
        if fail_with:
            raise RuntimeError(fail_with)


class Fails(Job):
    def perform(self, message):
        raise ValueError(message)


@retry_on(ValueError, attempts=3, wait=0.5)
class Flaky(Job):
    """Fails (ValueError) on its first ``failures`` runs, then returns."""

    def perform(self, failures, error='ValueError'):
        runs = get_redis(self.registry).incr('immortus-test:runs:' + self.job_id)
        if runs <= failures:
            raise {'ValueError': ValueError, 'KeyError': KeyError}[error](f'run {runs}')
        get_redis(self.registry).rpush(RAN, self.job_id)
        return {'runs': runs}


@retry_on(ValueError, attempts=2, wait=2)
class Patient(Job):
    """Fails its first run, then waits 2 s for its second, which returns."""

    def perform(self):
        runs = get_redis(self.registry).incr('immortus-test:runs:' + self.job_id)
        if runs == 1:
            raise ValueError('first')
        get_redis(self.registry).rpush(RAN, self.job_id)
        return runs


@tracking_strategy('redis')
class Pinned(Job):
    """Tracked by the redis strategy whatever the default is."""

    def perform(self):
        get_redis(self.registry).rpush(RAN, self.job_id)


def create(request):
    job_class = get_catalog(request.registry).get(request.matchdict['name'])
    body = request.json_body if request.body else {}
    if 'wait' in body:
        job_class = job_class.set(wait=body['wait'])
    return job_class.perform_later(request, *body.get('args', []))


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>immortus test page</title>
<meta name="csrf-token" content="page-token">
<script src="%(script)s"></script></head>
<body><p id="ready">ready</p><script>
window.events = [];
window.track = function (name, args, options) {
  return Immortus.create('/create/' + name, {data: {args: args}})
    .then(function (data) { events.push(['created', data]); return data; },
          function (error) { events.push(['create-failed', error]); })
    .then(function (info) {
      return Immortus.verify(info, options || {polling: {interval: 100}}).then(
        function (data) { events.push(['finished', data]); },
        function (error) { events.push(['failed', error]); },
        function (data) { events.push(['progress', data]); });
    });
};
</script></body></html>
"""


def page(request):
    script = request.static_url('pyramid_immortus:static/immortus.js')
    request.response.text = PAGE % {'script': script}
    return request.response


def echo(request):
    return {
        'csrf': request.headers.get('X-CSRF-Token'),
        'content_type': request.content_type,
        'body': request.text,
    }


def routes(config):
    config.add_route('echo', '/echo')
    config.add_view(echo, route_name='echo', renderer='json')
    config.add_route('create', '/create/{name}', request_method='POST')
    config.add_view(create, route_name='create', renderer='immortus')
    config.add_route('page', '/page')
    config.add_view(page, route_name='page')


def main(global_config, **settings):
    config = Configurator(settings=settings)
    config.include('pyramid_immortus')
    config.add_immortus_jobs(routes)
    config.scan('tests.integration_app')
    return config.make_wsgi_app()


def forgetful(global_config, **settings):
    """The same application without the ``Pinned`` job: a worker that does
    not know a job class."""
    config = Configurator(settings=settings)
    config.include('pyramid_immortus')
    for job_class in (Add, Slow, Steps, Fails, Flaky, Patient):
        config.add_immortus_job(job_class)
    return config.make_wsgi_app()
