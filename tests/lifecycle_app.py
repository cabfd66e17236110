"""Jobs and an application for the tests of a job's whole life (results,
retries, scheduling, stopping) and of its log lines."""

import time

from webtest import TestApp

from pyramid_immortus import Job, retry_on


class Returns(Job):
    def perform(self, kind):
        return {
            'dict': {'total': 3, 'lines': ['a', 'b']},
            'none': None,
            'set': {1, 2},
            'big': 'x' * 70000,
            'number': 42,
        }[kind]


@retry_on(KeyError, attempts=2)
@retry_on(ValueError, attempts=3, wait=(0.2, 0.4))
class Flaky(Job):
    """Fails on its first ``failures`` runs with ``error``, then returns."""

    def perform(self, failures, error='ValueError'):
        runs = self.registry.runs[self.job_id] = self.registry.runs.get(self.job_id, 0) + 1
        if runs <= failures:
            raise {'ValueError': ValueError, 'KeyError': KeyError, 'TypeError': TypeError}[error](
                f'run {runs}'
            )
        return {'runs': runs}


class Steps(Job):
    """Reports progress until it has done ``steps`` steps or is stopped."""

    def perform(self, steps):
        for step in range(steps):
            self.progress(step, steps)
            time.sleep(0.05)
        return 'done'


class Never(Job):
    def perform(self):
        self.registry.runs['never'] = 1


def start(request):
    body = request.json_body
    job_class = next(j for j in jobs() if j.__name__ == request.matchdict['name'])
    if 'wait' in body:
        job_class = job_class.set(wait=body['wait'])
    return job_class.perform_later(request, *body.get('args', []))


def make_app(make_config, **settings):
    config = make_config({'immortus.progress_interval': '0.05', **settings})
    config.registry.runs = {}
    config.add_route('start', '/start/{name}', request_method='POST')
    config.add_view(start, route_name='start', renderer='immortus')
    for job_class in jobs():
        config.add_immortus_job(job_class)
    app = TestApp(config.make_wsgi_app())
    app.registry = config.registry
    return app


def post(app, name, *args, **body):
    return app.post_json(f'/start/{name}', {'args': list(args), **body}).json['job_id']


@retry_on(ValueError, attempts=3, wait=lambda attempt: 1 / 0)
class BadWait(Job):
    """Its retry policy's wait raises."""

    def perform(self):
        raise ValueError('first')


@retry_on(ValueError, TypeError, attempts=3)
class BadResult(Job):
    """Returns what is not JSON; its policy covers TypeError."""

    def perform(self, kind):
        self.registry.runs[self.job_id] = self.registry.runs.get(self.job_id, 0) + 1
        return {'set': {1, 2}, 'keys': {1: 'int', '1': 'str'}, 'int': 10**400}[kind]


@retry_on(ValueError, attempts=3, wait=2)
class SlowRetry(Job):
    """Fails its first run, then waits 2 s for its second."""

    def perform(self):
        runs = self.registry.runs[self.job_id] = self.registry.runs.get(self.job_id, 0) + 1
        if runs == 1:
            raise ValueError('first')
        return runs


def jobs():
    """The job classes of :func:`make_app`."""
    return (Returns, Flaky, Steps, Never, BadWait, BadResult, SlowRetry)
