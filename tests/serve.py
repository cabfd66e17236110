"""Serve a PasteDeploy app with waitress on a port the OS picks.

``python -m tests.serve CONFIG_URI`` prints ``PORT <n>`` once listening.
"""

import sys

from pyramid.paster import get_app, setup_logging
from waitress.server import create_server


def main(config_uri):
    setup_logging(config_uri)
    app = get_app(config_uri)
    # waitress accepts no more than connection_limit (100 by default)
    # connections at once: every polling page keeps one open.
    server = create_server(app, host='127.0.0.1', port=0, threads=8, connection_limit=1000)
    print(f'PORT {server.effective_port}', flush=True)
    server.run()


if __name__ == '__main__':
    main(sys.argv[1])
