"""The trivial work both sides of bench/jobs.py run."""


def trivial(n):
    """What plain rq enqueues, and what the pyramid_immortus job calls."""
    return n * 2
