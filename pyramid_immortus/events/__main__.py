"""``python -m pyramid_immortus.events CONFIG_URI``: the events gateway."""

import sys

from .gateway import main

if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
