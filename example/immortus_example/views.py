"""Job-creation views and the page."""

from importlib.resources import files
from string import Template

from pyramid_immortus import find_tracking_strategy, get_settings

from .jobs import FailingJob, FlakyJob, GenerateInvoiceJob, QuickJob, SlowJob

#: Seconds until the scheduled job ("Start in 5 s") is due.
SCHEDULED_WAIT = 5


def create_quick(request):
    return QuickJob.perform_later(request)


def create_slow(request):
    return SlowJob.perform_later(request, seconds=5.0)


def create_scheduled(request):
    """A slow job due in a few seconds (ActiveJob's ``set(wait: ...)``):
    until then it reads queued with ``scheduled_at``."""
    return SlowJob.set(wait=SCHEDULED_WAIT).perform_later(request, seconds=1.0, steps=4)


def create_failing(request):
    return FailingJob.perform_later(request)


def create_flaky(request):
    return FlakyJob.perform_later(request)


def create_invoice(request):
    return GenerateInvoiceJob.perform_later(request)


def job_custom_verify(request):
    """The Rails documentation's custom verify: ``completed`` (so that the
    client knows when to stop) and ``percentage``, from the job's strategy."""
    job_id = request.matchdict['job_id']
    strategy = find_tracking_strategy(request.registry, GenerateInvoiceJob)
    status = strategy.meta(job_id)['custom_status']
    percentage = {None: 0, 'created': 0, 'started': 50, 'finished': 100}.get(status, 100)
    return {
        'job_id': job_id,
        'completed': strategy.completed(job_id),
        'failed': status == 'failed',
        'percentage': percentage,
    }


def job_routes(config):
    """The Rails documentation's ``immortus_jobs do ... end`` block: the
    job-creation routes and a custom verify route."""
    for name, view in (
        ('quick', create_quick),
        ('slow', create_slow),
        ('scheduled', create_scheduled),
        ('failing', create_failing),
        ('flaky', create_flaky),
        ('invoice', create_invoice),
    ):
        config.add_route(f'create_{name}', f'/jobs/{name}', request_method='POST')
        config.add_view(view, route_name=f'create_{name}', renderer='immortus')
    config.add_route('job_custom_verify', '/job_custom_verify/{job_id}', request_method='GET')
    config.add_view(
        job_custom_verify, route_name='job_custom_verify', renderer='json', http_cache=0
    )


PAGE = Template(files('immortus_example').joinpath('templates/index.html').read_text())


def index(request):
    request.response.text = PAGE.substitute(
        script=request.static_url('pyramid_immortus:static/immortus.js'),
        verify_path=get_settings(request).verify_path,
        scheduled_wait=SCHEDULED_WAIT,
        # the events gateway (immortus-events), if the .ini names one
        events_url=request.registry.settings.get('example.events_url', ''),
    )
    return request.response
