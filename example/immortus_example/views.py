"""Job-creation views and the page."""
from string import Template

from importlib.resources import files

from .jobs import FailingJob, QuickJob, SlowJob


def create_quick(request):
    return QuickJob.perform_later(request)


def create_slow(request):
    return SlowJob.perform_later(request, seconds=5.0)


def create_failing(request):
    return FailingJob.perform_later(request)


def job_routes(config):
    """The Rails documentation's ``immortus_jobs do ... end`` block."""
    for name, view in (('quick', create_quick), ('slow', create_slow),
                       ('failing', create_failing)):
        config.add_route(f'create_{name}', f'/jobs/{name}', request_method='POST')
        config.add_view(view, route_name=f'create_{name}', renderer='immortus')


PAGE = Template(files('immortus_example').joinpath('templates/index.html').read_text())


def index(request):
    request.response.text = PAGE.substitute(
        script=request.static_url('pyramid_immortus:static/immortus.js'),
        verify_path=request.registry.settings['immortus.verify_path'],
    )
    return request.response
