from pyramid_immortus import Job, tracking_strategy


@tracking_strategy('redis')
class Aliased(Job):
    def perform(self):
        pass


OldName = Aliased  # a module-level alias: the same class found twice by scan
