from pyramid_immortus import strategy_config


@strategy_config('seed_style')
class AnotherSeedStyleStrategy:
    """Same name as scanned.strategies.SeedStyleStrategy: a conflict."""

    def completed(self, job_id):
        return False
