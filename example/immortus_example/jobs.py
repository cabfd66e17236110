"""The example's jobs: found by config.scan(), like a user's would be.

Each calls ``self.progress()`` as it goes: that is where a job asked to
stop (the page's Cancel button, under the ``async`` adapter) stops.
"""

import time

from pyramid_immortus import Job, retry_on, tracking_strategy


class QuickJob(Job):
    """Done in half a second; returns a small result that the page shows."""

    def perform(self):
        time.sleep(0.5)
        self.progress(1, 1, 'counted')
        return {'rows': 1000, 'total': 123.45, 'currency': 'EUR'}


class SlowJob(Job):
    """Reports progress as it goes (a real progress bar in the page); the
    page can cancel it, running or still waiting for its time."""

    def perform(self, seconds=5.0, steps=20):
        for step in range(1, steps + 1):
            time.sleep(seconds / steps)
            self.meta['rows'] = step * 1000
            self.progress(step, steps, f'processed {step * 1000} rows')
        return {'rows': steps * 1000}


class FailingJob(Job):
    """Gets half way, then fails: the page shows the error."""

    def perform(self):
        for step in range(1, 4):
            time.sleep(0.3)
            self.progress(step, 6, f'step {step}')
        raise RuntimeError('the report could not be generated')


@retry_on(ConnectionError, attempts=3, wait=2)
class FlakyJob(Job):
    """Its first run fails as a flaky network would; ``retry_on`` runs it
    again two seconds later (the page reads "attempt 2 of 3" meanwhile),
    and the second run succeeds."""

    def perform(self):
        for step in range(1, 3):
            time.sleep(0.15)
            self.progress(step, 2, f'attempt {self.attempt}: step {step}')
        if self.attempt == 1:
            raise ConnectionError('the mail server did not answer')
        return {'sent': True, 'attempt': self.attempt}


@tracking_strategy('sqlite')
class GenerateInvoiceJob(Job):
    """The Rails documentation's inline strategy: this job alone is
    tracked by the sqlite table of ``MyCustomTrackingStrategy``."""

    def perform(self, steps=8):
        for step in range(1, steps + 1):
            time.sleep(0.25)
            self.progress(step, steps)
