"""Make sure what the test suite needs is here and running.

``python tests/services.py``: Redis on 127.0.0.1:6379 (installed with
apt-get and started when missing), Chromium (apt-get), node and the npm
test tools (``npm ci`` in tests/js).  Everything else the tests need is a
Python package of the ``testing`` extra.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDIS_PORT = 6379


def say(message):
    print(f'[services] {message}', flush=True)


def run(*args, **kwargs):
    say(' '.join(args))
    subprocess.run(args, check=True, **kwargs)


_apt_updated = []


def apt_install(*packages):
    if shutil.which('apt-get') is None:
        sys.exit(f'[services] please install {" ".join(packages)} (no apt-get here)')
    sudo = [] if os.geteuid() == 0 else ['sudo']
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    if not _apt_updated:
        run(*sudo, 'apt-get', 'update', '-qq', env=env)
        _apt_updated.append(True)
    run(*sudo, 'apt-get', 'install', '-y', '-qq', *packages, env=env)


def redis_answers(port=REDIS_PORT):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1) as sock:
            sock.sendall(b'PING\r\n')
            return sock.recv(16).startswith(b'+PONG')
    except OSError:
        return False


def ensure_redis():
    # the fault tests start redis-server processes of their own
    if shutil.which('redis-server') is None:
        apt_install('redis-server')
    if redis_answers():
        say(f'redis answers on 127.0.0.1:{REDIS_PORT}')
        return
    os.makedirs('/tmp/immortus-redis', exist_ok=True)
    run(
        'redis-server',
        '--daemonize',
        'yes',
        '--bind',
        '127.0.0.1',
        '--port',
        str(REDIS_PORT),
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        '/tmp/immortus-redis',
        '--logfile',
        '/tmp/immortus-redis/redis.log',
    )
    deadline = time.monotonic() + 20
    while not redis_answers():
        if time.monotonic() > deadline:
            sys.exit('[services] redis-server did not start')
        time.sleep(0.1)
    say('redis started')


def ensure_chromium():
    if any(shutil.which(name) for name in ('chromium', 'chromium-browser')):
        say('chromium is installed')
        return
    apt_install('chromium')


JS_TESTS = os.path.join(ROOT, 'tests', 'js')


def missing_npm_packages():
    """The devDependencies of tests/js that are not installed."""
    with open(os.path.join(JS_TESTS, 'package.json')) as f:
        wanted = json.load(f)['devDependencies']
    return [
        name for name in wanted if not os.path.isdir(os.path.join(JS_TESTS, 'node_modules', name))
    ]


def ensure_node():
    if shutil.which('node') is None or shutil.which('npm') is None:
        apt_install('nodejs', 'npm')
    if not missing_npm_packages():
        say('npm test tools are installed')
        return
    run('npm', 'ci', '--no-audit', '--no-fund', cwd=JS_TESTS)


def main():
    ensure_redis()
    ensure_chromium()
    ensure_node()


if __name__ == '__main__':
    main()
