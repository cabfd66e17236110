from pyramid_immortus import strategy_config


@strategy_config('seed_style')
class SeedStyleStrategy:
    """Written as in the Rails documentation: no interface, no registry."""

    def __init__(self):
        self.records = {}

    def job_enqueued(self, job_id):
        self.records[job_id] = 'created'

    def job_started(self, job_id):
        self.records[job_id] = 'started'

    def job_finished(self, job_id):
        self.records[job_id] = 'finished'

    def completed(self, job_id):
        return self.records.get(job_id) == 'finished'

    def meta(self, job_id):
        return {
            'status': self.records.get(job_id),
            'completed': 'overwritten?',
            'job_id': 'overwritten?',
        }


class NotAStrategy:
    """Has no completed(): refused at commit."""

    def meta(self, job_id):
        return {}
