"""Venusian decorators: nothing happens at import, ``config.scan()`` acts."""

from typing import Any, TypeVar

import venusian

from .config import set_inline_strategy
from .scanning import on_scan

T = TypeVar('T', bound=type)


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

    def __init__(self, strategy: Any) -> None:
        self.strategy = strategy

    def __call__(self, wrapped: T) -> T:
        on_scan(
            wrapped,
            lambda config, codeinfo: set_inline_strategy(
                config, wrapped, self.strategy, _info=codeinfo
            ),
            venusian=self.venusian,
        )
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

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, wrapped: T) -> T:
        on_scan(
            wrapped,
            lambda config, codeinfo: config.add_tracking_strategy(
                self.name, wrapped, _info=codeinfo
            ),
            venusian=self.venusian,
        )
        return wrapped
