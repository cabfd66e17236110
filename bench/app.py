"""The application bench/verify.py serves: the default verify view on three
strategies, the floor, and a hand-written rq view."""

import json

from pyramid.config import Configurator
from pyramid.response import Response
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob

from pyramid_immortus import Job, tracking_strategy
from pyramid_immortus.connection import get_redis

#: The logging part of every bench .ini: warnings and errors only.
LOGGING = """
[loggers]
keys = root, waitress
[logger_waitress]
level = ERROR
handlers =
qualname = waitress
[handlers]
keys = console
[formatters]
keys = generic
[logger_root]
level = WARN
handlers = console
[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic
[formatter_generic]
format = %(levelname)s %(message)s
"""

BODY = json.dumps({'job_id': 'x', 'completed': False, 'status': 'queued'}).encode()


@tracking_strategy('memory')
class MemoryJob(Job):
    def perform(self):
        pass


@tracking_strategy('redis')
class RedisJob(Job):
    def perform(self):
        pass


@tracking_strategy('rq')
class RQJobClass(Job):
    name = 'RQJob'

    def perform(self):
        pass


def floor(request):
    """The floor: one Redis GET, a fixed JSON body."""
    get_redis(request.registry).get('bench:floor:' + request.matchdict['job_id'])
    return Response(body=BODY, content_type='application/json')


def handwritten(request):
    """What a user could write by hand with rq's API."""
    try:
        job = RQJob.fetch(request.matchdict['job_id'], connection=get_redis(request.registry))
    except NoSuchJobError:
        return Response(json_body={'error': 'unknown job'}, status=404)
    return Response(json_body={'job_id': job.id, 'status': job.get_status()})


def create(request):
    job_class = {'memory': MemoryJob, 'redis': RedisJob, 'rq': RQJobClass}[
        request.matchdict['kind']
    ]
    return job_class.perform_later(request)


def main(global_config, **settings):
    with Configurator(settings=settings) as config:
        config.include('pyramid_immortus')
        config.add_route('floor', '/floor/{job_id}')
        config.add_view(floor, route_name='floor')
        config.add_route('handwritten', '/handwritten/{job_id}')
        config.add_view(handwritten, route_name='handwritten')
        config.add_route('create', '/create/{kind}', request_method='POST')
        config.add_view(create, route_name='create', renderer='immortus')
        config.scan('bench.app')
    return config.make_wsgi_app()
