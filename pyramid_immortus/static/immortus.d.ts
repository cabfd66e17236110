// Type declarations for immortus.js, the browser client of pyramid_immortus.

export type JobState = 'queued' | 'started' | 'finished' | 'failed' | 'unknown';

export interface Progress {
  current: number;
  total: number | null;
  percent: number | null;
  message: string | null;
}

/** What the create view answers (the `immortus` renderer). */
export interface CreatedJob {
  job_id: string;
  job_class?: string;
  [field: string]: unknown;
}

/** Plain JSON data: what a job's `result` (and its `meta`) may hold. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * What a verify view answers; extra fields come from the strategy's meta.
 * The built-in strategies send every field below except those marked as
 * sometimes absent; a strategy or verify route of your own sends what it
 * chooses, so every field but `job_id` and `completed` is optional.
 */
export interface VerifyAnswer {
  job_id: string;
  completed: boolean;
  failed?: boolean;
  status?: JobState;
  progress?: Progress;
  meta?: Record<string, unknown>;
  error?: string;
  exception?: { type: string; message: string };
  enqueued_at?: string | null;
  started_at?: string | null;
  ended_at?: string | null;
  /**
   * What `perform` returned, once the job finished (`status: "finished"`):
   * JSON data, `null` when it returned `None`.  Absent before the end and
   * for a failed job.
   */
  result?: JsonValue;
  /** The run under way or next, from 1 (built-in strategies: always). */
  attempt?: number;
  /** The most runs the job's `retry_on` policies allow; 1 without (built-in strategies: always). */
  max_attempts?: number;
  /** Between two runs of a `retry_on` job (`status: "queued"`): when the next run is due (ISO 8601 UTC). */
  retry_at?: string;
  /** Once a run failed and was retried: `"Type: message"` of its error. */
  last_error?: string;
  /** A job enqueued with `Job.set(wait=...)`: when it is due (ISO 8601 UTC); kept after it started. */
  scheduled_at?: string;
  [field: string]: unknown;
}

/**
 * Why a create, verify or cancel promise rejected: an error answer's JSON
 * body, or `{job_id?, error}` made by the client (timeout, cancel, network
 * error, an answer that is not JSON).
 */
export interface Rejection {
  job_id?: string;
  error?: string;
  /**
   * The HTTP status code of the answer that caused it (none for a timeout,
   * cancel or network error), unless its JSON body has a `status` of its
   * own (a verify 404 `{"status": "unknown"}` keeps that job state).
   */
  status?: JobState | number;
  [field: string]: unknown;
}

export interface JobInfo {
  job_id?: string;
  job_class?: string;
  verify_job_url?: string;
}

export interface PollingOptions {
  /** ms from the previous answer to the next request (default 500) */
  interval?: number;
  /** retries of a network error or 502/503/504 (default 3) */
  retries?: number;
  /** ms after which the promise rejects with {error: "timeout"} */
  timeout?: number | null;
  /** the longest wait between retries, in ms (default 30000) */
  maxBackoff?: number;
}

/** The part of the browser's EventSource that the client uses. */
export interface EventSourceLike {
  addEventListener(type: 'job' | 'end', listener: (event: MessageEvent) => void): void;
  onerror: ((this: any, event: Event) => any) | null;
  close(): void;
}

export type EventSourceClass = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

export interface VerifyOptions {
  polling?: PollingOptions;
  /**
   * The events gateway's stream URL (`immortus-events`, e.g. "/immortus/events"):
   * follow the jobs over one EventSource instead of polling (default
   * `Immortus.defaults.eventsUrl`, null: poll).  Without EventSource, or when
   * the stream fails before its first event, the client polls.
   */
  eventsUrl?: string | null;
  /** the EventSource constructor (default: the global one) */
  EventSource?: EventSourceClass | null;
  /** verifyAll: ids per batch request (default 100, the server's immortus.batch_max) */
  batchMax?: number;
  verifyPath?: string;
  signal?: AbortSignal;
  credentials?: RequestCredentials;
}

export interface CreateOptions {
  method?: string;
  data?: unknown;
  /** sent as X-CSRF-Token (default: the page's <meta name="csrf-token">), only to the page's own origin */
  csrfToken?: string;
  /** also send the CSRF token to another origin (outside a browser: to an absolute URL) */
  csrfCrossOrigin?: boolean;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  credentials?: RequestCredentials;
}

export declare class ImmortusPromise<T, P = unknown> implements PromiseLike<T> {
  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
    onProgress?: ((progress: P) => unknown) | null
  ): ImmortusPromise<R1 | R2, P>;
  catch<R = never>(onRejected?: ((reason: any) => R | PromiseLike<R>) | null): ImmortusPromise<T | R, P>;
  finally(onFinally?: (() => unknown) | null): ImmortusPromise<T, P>;
  progress(onProgress: (progress: P) => unknown): ImmortusPromise<T, P>;
  /** Stop polling (or the request in flight); rejects with {error: "cancelled"}. */
  cancel(): boolean;
  static resolve<T>(value: T | PromiseLike<T>): ImmortusPromise<T>;
  static reject<T = never>(reason: unknown): ImmortusPromise<T>;
}

export interface Deferred<T, P = unknown> {
  promise: ImmortusPromise<T, P>;
  resolve(value: T | PromiseLike<T>): void;
  reject(reason: unknown): void;
  notify(progress: P): void;
}

/** A batch answer entry: the single verify's JSON plus the status it would have. */
export type BatchEntry = VerifyAnswer & { code: number };

export interface VerifyAllPromise extends ImmortusPromise<{ jobs: Record<string, BatchEntry> }, BatchEntry> {
  /** one promise per job id, settled as verify's would be */
  jobs: Record<string, ImmortusPromise<BatchEntry, BatchEntry>>;
}

/** What the cancel view answers: 200 cancelled, 202 stopping. */
export interface CancelAnswer {
  job_id: string;
  cancelled?: boolean;
  stopping?: boolean;
}

export interface ImmortusStatic {
  version: string;
  defaults: {
    verifyPath: string;
    eventsUrl: string | null;
    EventSource: EventSourceClass | null;
    batchMax: number;
    polling: Required<PollingOptions>;
  };
  Promise: typeof ImmortusPromise;
  STATES: JobState[];
  defer<T = unknown, P = unknown>(canceller?: () => void): Deferred<T, P>;
  create(url: string, options?: CreateOptions): ImmortusPromise<CreatedJob>;
  verify(jobInfo: JobInfo, options?: VerifyOptions): ImmortusPromise<VerifyAnswer, VerifyAnswer>;
  verifyAll(jobInfos: JobInfo[], options?: VerifyOptions): VerifyAllPromise;
  cancel(jobInfo: JobInfo, options?: CreateOptions & { verifyPath?: string }): ImmortusPromise<CancelAnswer>;
  status(data: unknown): JobState;
}

declare const Immortus: ImmortusStatic;
export default Immortus;
export declare const create: ImmortusStatic['create'];
export declare const verify: ImmortusStatic['verify'];
export declare const verifyAll: ImmortusStatic['verifyAll'];
export declare const cancel: ImmortusStatic['cancel'];
export declare const status: ImmortusStatic['status'];
export declare const defer: ImmortusStatic['defer'];
export declare const defaults: ImmortusStatic['defaults'];
