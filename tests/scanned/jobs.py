from pyramid_immortus import Job, tracking_strategy

from .strategies import SeedStyleStrategy


class Base(Job):
    """An abstract intermediate base: not registered."""

    abstract = True

    def perform(self, *args):
        self.registry.settings.setdefault('performed', []).append(
            (self.job_class, self.job_id, args)
        )
        return args


class Plain(Base):
    pass


@tracking_strategy('seed_style')
class Inline(Base):
    pass


class InheritsInline(Inline):
    """No decorator of its own: inherits seed_style."""


@tracking_strategy(SeedStyleStrategy)
class InlineByClass(Base):
    pass


class Renamed(Base):
    name = 'custom-name'


Alias = Plain  # found twice by the scan, registered once
