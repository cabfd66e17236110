"""``python -m bench.serve CONFIG_URI``: waitress on a port from the OS."""

import sys

from pyramid.paster import get_app, setup_logging
from waitress.server import create_server


def main(config_uri, threads=8):
    setup_logging(config_uri)
    server = create_server(
        get_app(config_uri), host='127.0.0.1', port=0, threads=threads, connection_limit=1000
    )
    print(f'PORT {server.effective_port}', flush=True)
    server.run()


if __name__ == '__main__':
    main(sys.argv[1])
