"""Where job classes, strategies and the queue adapter are looked up."""

from typing import Any

from zope.interface import implementer

from .exceptions import JobNotRegistered
from .interfaces import IJobCatalog, IJobTrackingStrategy, IQueueAdapter
from .settings import get_settings


@implementer(IJobCatalog)
class JobCatalog:
    """The job classes of one application and their inline strategies."""

    def __init__(self):
        self._by_name = {}
        self._names = {}
        self._inline = {}

    def add(self, name, job_class):
        """Register ``job_class`` under ``name``."""
        self._by_name[name] = job_class
        self._names[job_class] = name

    def get(self, name):
        """Return the job class registered as ``name``, or ``None``."""
        return self._by_name.get(name)

    def name_of(self, job_class):
        """Return the name ``job_class`` was registered under."""
        try:
            return self._names[job_class]
        except KeyError:
            raise JobNotRegistered(
                f'{job_class.__module__}.{job_class.__qualname__} is not a '
                'registered job: scan its module with config.scan() or call '
                'config.add_immortus_job()'
            ) from None

    def names(self):
        """Return the registered job names, sorted."""
        return sorted(self._by_name)

    def set_inline_strategy(self, job_class, strategy_name):
        """Make ``strategy_name`` the strategy of ``job_class`` and of its
        subclasses that do not name their own."""
        self._inline[job_class] = strategy_name

    def inline_strategies(self):
        """Return ``[(job_class, strategy)]`` as set so far."""
        return list(self._inline.items())

    def inline_strategy(self, job_class):
        """Return the nearest inline strategy name along the MRO, or
        ``None``."""
        for klass in job_class.__mro__:
            name = self._inline.get(klass)
            if name is not None:
                return name
        return None


def get_catalog(registry):
    """Return the application's :class:`JobCatalog`."""
    return registry.getUtility(IJobCatalog)


def get_queue_adapter(registry: Any) -> Any:
    """Return the queue adapter named by ``immortus.queue_adapter``."""
    name = get_settings(registry).queue_adapter
    return registry.getUtility(IQueueAdapter, name=name)


def strategy_name_for(registry, job_class=None):
    """Return the strategy name of ``job_class`` (or the default one).

    The layers, first match wins: the job's inline strategy
    (``@tracking_strategy``), the ``immortus.tracking_strategy`` setting,
    the strategy inferred from the queue adapter.
    """
    if job_class is not None:
        name = get_catalog(registry).inline_strategy(job_class)
        if name is not None:
            return name
    name = get_settings(registry).tracking_strategy
    if name is not None:
        return name
    return get_queue_adapter(registry).strategy_name


def find_tracking_strategy(registry: Any, job_class: type | str | None = None) -> Any:
    """Return the tracking strategy of ``job_class`` (a class or a
    registered job name), or the default strategy when it is ``None``.

    Raises :class:`LookupError` naming what was looked for.
    """
    if isinstance(job_class, str):
        klass = get_catalog(registry).get(job_class)
        if klass is None:
            raise JobNotRegistered(f'no job class is registered as {job_class!r}')
        job_class = klass
    name = strategy_name_for(registry, job_class)
    strategy = registry.queryUtility(IJobTrackingStrategy, name=name)
    if strategy is None:
        raise LookupError(f'no tracking strategy is registered as {name!r}')
    return strategy
