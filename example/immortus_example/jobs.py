"""The example's jobs: found by config.scan(), like a user's would be."""
import time

from pyramid_immortus import Job, tracking_strategy


class QuickJob(Job):
    """Done in half a second."""

    def perform(self):
        time.sleep(0.5)


class SlowJob(Job):
    """Reports progress as it goes (a real progress bar in the page)."""

    def perform(self, seconds=5.0, steps=20):
        for step in range(1, steps + 1):
            time.sleep(seconds / steps)
            self.meta['rows'] = step * 1000
            self.progress(step, steps, f'processed {step * 1000} rows')


class FailingJob(Job):
    """Gets half way, then fails: the page shows the error."""

    def perform(self):
        for step in range(1, 4):
            time.sleep(0.3)
            self.progress(step, 6, f'step {step}')
        raise RuntimeError('the report could not be generated')


@tracking_strategy('sqlite')
class GenerateInvoiceJob(Job):
    """The Rails documentation's inline strategy: this job alone is
    tracked by the sqlite table of ``MyCustomTrackingStrategy``."""

    def perform(self, steps=8):
        for step in range(1, steps + 1):
            time.sleep(0.25)
            self.progress(step, steps)
