"""Venusian decorators: nothing happens at import, ``config.scan()`` acts."""
import venusian

from .config import set_inline_strategy


class tracking_strategy:
    """Give a job class its own (inline) tracking strategy::

        @tracking_strategy('redis')
        class GenerateInvoice(Job):
            ...

    ``strategy`` is a registered strategy name, a dotted name, or a strategy
    class or factory.  Subclasses inherit it unless they are decorated
    themselves.  It takes effect when ``config.scan()`` finds the class.
    """

    venusian = venusian  # for testing injection

    def __init__(self, strategy):
        self.strategy = strategy

    def __call__(self, wrapped):
        def callback(scanner, name, ob):
            config = getattr(scanner, 'config', None)
            if config is not None and ob is wrapped:
                set_inline_strategy(config.with_package(info.module), ob,
                                    self.strategy)

        info = self.venusian.attach(wrapped, callback, category='pyramid')
        return wrapped


class strategy_config:
    """Register a tracking strategy class under ``name`` when scanned::

        @strategy_config('custom')
        class MyCustomTrackingStrategy:
            def completed(self, job_id):
                ...

    The same as ``config.add_tracking_strategy(name, cls)``.
    """

    venusian = venusian  # for testing injection

    def __init__(self, name):
        self.name = name

    def __call__(self, wrapped):
        def callback(scanner, name, ob):
            config = getattr(scanner, 'config', None)
            if config is not None and ob is wrapped:
                config.with_package(info.module).add_tracking_strategy(
                    self.name, ob)

        info = self.venusian.attach(wrapped, callback, category='pyramid')
        return wrapped
