"""The Rails documentation's ``MyCustomTrackingStrategy``: job states in a
table of a real database (sqlite, so every process on the host sees them)."""

import sqlite3
import threading

from pyramid_immortus import strategy_config


@strategy_config('sqlite')
class MyCustomTrackingStrategy:
    """Saves in a custom table that a job was created, started, finished.

    Written as the Rails documentation writes it: no interface to declare;
    ``completed`` is required, ``meta`` adds fields to every verify answer.
    """

    def __init__(self, registry):
        self.path = registry.settings.get('example.sqlite_path', 'example.sqlite')
        self._local = threading.local()
        with self._db() as db:
            db.execute(
                'CREATE TABLE IF NOT EXISTS my_custom_tracking_jobs '
                '(job_id TEXT PRIMARY KEY, status TEXT NOT NULL)'
            )

    def _db(self):
        db = getattr(self._local, 'db', None)
        if db is None:
            db = self._local.db = sqlite3.connect(self.path, timeout=10)
        return db

    def _set(self, job_id, status):
        with self._db() as db:
            db.execute(
                'INSERT INTO my_custom_tracking_jobs (job_id, status) VALUES (?, ?) '
                'ON CONFLICT (job_id) DO UPDATE SET status = excluded.status',
                (job_id, status),
            )

    def _find(self, job_id):
        row = (
            self._db()
            .execute('SELECT status FROM my_custom_tracking_jobs WHERE job_id = ?', (job_id,))
            .fetchone()
        )
        return row[0] if row else None

    def job_enqueued(self, job_id):
        self._set(job_id, 'created')

    def job_started(self, job_id):
        self._set(job_id, 'started')

    def job_finished(self, job_id):
        self._set(job_id, 'finished')

    def job_failed(self, job_id, exc):
        self._set(job_id, 'failed')

    def completed(self, job_id):
        """Mandatory: True once the job finished."""
        return self._find(job_id) == 'finished'

    def meta(self, job_id):
        """Added to every verify answer of this strategy's jobs."""
        return {'custom_status': self._find(job_id)}
