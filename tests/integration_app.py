"""The application integration tests serve and run workers against."""
import os
import time

from pyramid.config import Configurator

from pyramid_immortus import Job
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


class Fails(Job):
    def perform(self, message):
        raise ValueError(message)


def create(request):
    job_class = get_catalog(request.registry).get(request.matchdict['name'])
    body = request.json_body if request.body else {}
    return job_class.perform_later(request, *body.get('args', []))


def routes(config):
    config.add_route('create', '/create/{name}', request_method='POST')
    config.add_view(create, route_name='create', renderer='immortus')


def main(global_config, **settings):
    config = Configurator(settings=settings)
    config.include('pyramid_immortus')
    config.add_immortus_jobs(routes)
    config.scan('tests.integration_app')
    return config.make_wsgi_app()
