from pyramid_immortus import Job


class Plain(Job):
    """Same name as scanned.jobs.Plain: a conflict when both are scanned."""

    def perform(self):
        pass
