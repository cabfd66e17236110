"""The example application of pyramid_immortus."""

from pyramid.config import Configurator

from .views import index, job_routes


def main(global_config, **settings):
    """The WSGI application: ``pserve example/development.ini``."""
    with Configurator(settings=settings) as config:
        config.include('pyramid_immortus')
        config.add_immortus_jobs(job_routes)
        config.add_route('index', '/')
        config.add_view(index, route_name='index')
        config.scan('.strategies')
        config.scan('.jobs')
    return config.make_wsgi_app()
