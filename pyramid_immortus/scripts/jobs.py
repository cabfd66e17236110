"""``immortus-jobs CONFIG_URI``: the jobs of an application, as ``proutes``
shows its routes.

Boots the application (:func:`pyramid.paster.bootstrap`) and prints one row
per registered job: its name, class, the tracking strategy it resolves to
and the layer that chose it (``inline``, ``setting``, ``inferred``), its
queue and its retry policies; then the queue adapter, the default strategy
and the registered strategies.  ``--format json`` prints the same as JSON.
An application whose configuration fails prints the error and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from pyramid.exceptions import ConfigurationError

from ..catalog import get_catalog, get_queue_adapter
from ..config import dotted_name
from ..interfaces import IJobTrackingStrategy
from ..settings import get_settings

#: What a cell without a value shows.
NONE = '-'


def strategy_layer(registry: Any, job_class: Any = None) -> tuple[str, str]:
    """``(strategy name, layer)`` of ``job_class`` (or the default), in the
    lookup order of :func:`pyramid_immortus.catalog.strategy_name_for`."""
    if job_class is not None:
        name = get_catalog(registry).inline_strategy(job_class)
        if name is not None:
            return name, 'inline'
    name = get_settings(registry).tracking_strategy
    if name is not None:
        return name, 'setting'
    return get_queue_adapter(registry).strategy_name, 'inferred'


def retry_policies(job_class: Any) -> list[str]:
    """The job's retry policies, as text (none: ``[]``)."""
    return [str(policy) for policy in getattr(job_class, 'retry_policies', ()) or ()]


def class_name(obj: Any) -> str:
    return dotted_name(obj if isinstance(obj, type) else type(obj))


def describe(registry: Any) -> dict[str, Any]:
    """What ``immortus-jobs`` shows of the application of ``registry``."""
    settings = get_settings(registry)
    catalog = get_catalog(registry)
    jobs = []
    for name in catalog.names():
        job_class = catalog.get(name)
        strategy, layer = strategy_layer(registry, job_class)
        jobs.append(
            {
                'name': name,
                'class': dotted_name(job_class),
                'strategy': strategy,
                'strategy_from': layer,
                'queue': getattr(job_class, 'queue', None) or settings.rq_queue,
                'retry': retry_policies(job_class),
            }
        )
    default, layer = strategy_layer(registry)
    adapter = get_queue_adapter(registry)
    return {
        'jobs': jobs,
        'queue_adapter': {'name': str(settings.queue_adapter), 'class': class_name(adapter)},
        'default_strategy': {'name': default, 'strategy_from': layer},
        'strategies': [
            {'name': name, 'class': class_name(strategy)}
            for name, strategy in sorted(registry.getUtilitiesFor(IJobTrackingStrategy))
        ],
    }


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Aligned columns under their headers and a line of dashes, as
    ``proutes`` prints them."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells):
        return '  '.join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), line(['-' * len(h) for h in headers]), *(line(r) for r in rows)]


def as_text(data: dict[str, Any]) -> str:
    rows = [
        [
            job['name'],
            job['class'],
            job['strategy'],
            job['strategy_from'],
            job['queue'],
            ', '.join(job['retry']) or NONE,
        ]
        for job in data['jobs']
    ]
    lines = table(['Name', 'Class', 'Strategy', 'From', 'Queue', 'Retry'], rows)
    if not rows:
        lines.append('(no registered jobs)')
    adapter = data['queue_adapter']
    default = data['default_strategy']
    lines += [
        '',
        f'Queue adapter: {adapter["name"]} ({adapter["class"]})',
        f'Default strategy: {default["name"]} ({default["strategy_from"]})',
        '',
    ]
    lines += table(['Strategy', 'Class'], [[s['name'], s['class']] for s in data['strategies']])
    return '\n'.join(lines) + '\n'


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='immortus-jobs',
        description='Print the pyramid_immortus jobs of the Pyramid application '
        'configured by CONFIG_URI: strategy (and the layer that chose '
        'it), queue and retry policies of each, the queue adapter and '
        'the registered strategies.',
    )
    parser.add_argument('config_uri', help='the .ini file, e.g. development.ini')
    parser.add_argument(
        '--format',
        choices=('text', 'json'),
        default='text',
        help='text (an aligned table, the default) or json',
    )
    return parser.parse_args(argv)


def main(
    argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """The ``immortus-jobs`` console script: 0, or 1 when the
    application's configuration fails."""
    from pyramid.paster import bootstrap, setup_logging

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        setup_logging(args.config_uri)
        env = bootstrap(args.config_uri)
    except ConfigurationError as exc:
        print(
            f'immortus-jobs: the configuration of {args.config_uri} fails:\n'
            f'{type(exc).__name__}: {exc}',
            file=err,
        )
        return 1
    try:
        data = describe(env['registry'])
    finally:
        env['closer']()
    if args.format == 'json':
        out.write(json.dumps(data, indent=2) + '\n')
    else:
        out.write(as_text(data))
    return 0


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
