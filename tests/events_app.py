"""An application for the events gateway's tests: the user is the
``X-User`` header (or the ``user`` cookie), ``view-jobs`` is granted to
every user but ``blocked``, and a job is its owner's alone."""

from pyramid.config import Configurator

from tests.integration_app import Steps


class HeaderSecurity:
    def identity(self, request):
        return request.headers.get('X-User') or request.cookies.get('user')

    def authenticated_userid(self, request):
        return self.identity(request)

    def permits(self, request, context, permission):
        user = self.identity(request)
        return user is not None and user != 'blocked' and permission == 'view-jobs'

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


def main(global_config, **settings):
    settings.setdefault('immortus.verify_owner_only', 'true')
    settings.setdefault('immortus.verify_permission', 'view-jobs')
    config = Configurator(settings=settings)
    config.set_security_policy(HeaderSecurity())
    config.include('pyramid_immortus')
    config.add_immortus_job(Steps)
    return config.make_wsgi_app()
