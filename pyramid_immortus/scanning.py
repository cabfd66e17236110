"""What ``config.scan()`` does with this add-on's decorated classes."""

import venusian as _venusian


def on_scan(wrapped, register, venusian=_venusian, depth=1):
    """Attach a callback to ``wrapped`` that, when ``config.scan()`` finds
    it under its own name (a module-level alias such as ``B = A`` is the
    same class found twice, and is skipped), calls ``register(config,
    codeinfo)`` with the configurator of the scanned package and the scan's
    ``codeinfo``, so that a conflict names the user's file and line."""

    def callback(scanner, name, ob):
        config = getattr(scanner, 'config', None)
        if config is None or ob is not wrapped or name != wrapped.__name__:
            return
        register(config.with_package(info.module), info.codeinfo)

    info = venusian.attach(wrapped, callback, category='pyramid', depth=depth + 1)
    return info
