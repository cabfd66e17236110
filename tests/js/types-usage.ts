// Type-checked by types.test.js: the declarations describe the real API.
import Immortus, { verify, type VerifyAnswer, type JobState, type Rejection, type JsonValue } from '../../pyramid_immortus/static/immortus';

const controller = new AbortController();
const promise = Immortus.create('/jobs', { data: { id: 1 }, csrfToken: 't' })
  .then((job) => verify(job, { polling: { interval: 800, retries: 2, timeout: 60000 }, signal: controller.signal }))
  .then((data: VerifyAnswer) => data.completed, (error) => error.error as string);

Immortus.verify({ job_id: 'x', job_class: 'Y' }).then(
  (done) => done.status,
  (failed) => failed,
  (progress) => progress.progress?.percent);

const cancelled: boolean = promise.cancel();
const state: JobState = Immortus.status({ completed: true });
const d = Immortus.defer<number, string>();
d.notify('half');
d.resolve(1);
d.promise.progress((p: string) => p.length).finally(() => undefined);
async function awaited(): Promise<boolean> {
  const answer = await Immortus.verify({ job_id: 'z' });
  return answer.completed && cancelled && state === 'finished';
}
void awaited;

const many = Immortus.verifyAll([{ job_id: 'a' }, { job_id: 'b', job_class: 'C' }], { batchMax: 50 });
many.jobs['a'].then((entry) => entry.code);
many.then((all) => Object.keys(all.jobs).length, undefined, (entry) => entry.job_id);
Immortus.cancel({ job_id: 'a' }, { csrfToken: 't' }).then((answer) => answer.cancelled || answer.stopping);
Immortus.cancel({ job_id: 'a' }, { verifyPath: 'https://jobs.example/v', csrfToken: 't', csrfCrossOrigin: true })
  .then(undefined, (why: Rejection) => (typeof why.status === 'number' ? why.status : why.error));

// A job's whole life: its result, its attempts, its due time.
Immortus.verify({ job_id: 'r' }).then(
  (done) => {
    const result: JsonValue | undefined = done.result;
    const rows: number = done.result !== null && typeof done.result === 'object' && !Array.isArray(done.result)
      && typeof done.result.rows === 'number' ? done.result.rows : 0;
    return { result, rows, attempts: `${done.attempt ?? 1} of ${done.max_attempts ?? 1}` };
  },
  (failed: VerifyAnswer) => failed.last_error,
  (waiting) => {
    const due: string | undefined = waiting.retry_at ?? waiting.scheduled_at;
    const runs: number | undefined = waiting.attempt;
    const error: string | undefined = waiting.last_error;
    return due !== undefined && runs !== undefined && error !== undefined ? new Date(due) : null;
  });
const json: JsonValue = { a: [1, 'two', null, true, { b: 3.5 }] };
void json;
