import os
import re

from setuptools import find_namespace_packages, setup

here = os.path.abspath(os.path.dirname(__file__))
with open(os.path.join(here, 'README.md'), encoding='utf-8') as f:
    README = f.read()
with open(os.path.join(here, 'pyramid_immortus', '__init__.py'), encoding='utf-8') as f:
    VERSION = re.search(r"^__version__ = '([^']+)'", f.read(), re.M).group(1)

requires = [
    'pyramid>=2.0',
    'zope.interface',
    'venusian>=3.0',
    'redis>=5.0.1',
    'rq>=3.0,<4',
]

#: the events gateway (immortus-events): an asyncio server of Server-Sent Events
events_extras = [
    'uvicorn>=0.30',
    'uvloop>=0.19; sys_platform != "win32"',
    'httptools>=0.6',
]

example_extras = [
    'waitress',
]

testing_extras = [
    'pytest',
    'WebTest',
    'waitress',
    'pyramid_tm',
    'transaction',
    'hypothesis',
    'playwright',
    *events_extras,
    'ruff',
    'mypy',
    'nox',
]

setup(
    name='pyramid_immortus',
    version=VERSION,
    description='Start background jobs from a Pyramid page and follow them '
    'to the end: progress, success or failure.',
    long_description=README,
    long_description_content_type='text/markdown',
    classifiers=[
        'Framework :: Pyramid',
        'Programming Language :: Python :: 3',
        'Topic :: Internet :: WWW/HTTP :: WSGI',
    ],
    keywords='pyramid jobs rq redis background progress polling',
    license='MIT',
    packages=find_namespace_packages(include=['pyramid_immortus', 'pyramid_immortus.*']),
    package_data={'pyramid_immortus': ['py.typed', 'static/*.js', 'static/*.mjs', 'static/*.d.ts']},
    include_package_data=True,
    zip_safe=False,
    python_requires='>=3.10',
    install_requires=requires,
    extras_require={
        'testing': testing_extras,
        'example': example_extras,
        'events': events_extras,
    },
    entry_points={
        'console_scripts': [
            'immortus-worker = pyramid_immortus.worker:main',
            'immortus-jobs = pyramid_immortus.scripts.jobs:main',
            'immortus-events = pyramid_immortus.events:main',
        ],
    },
)
