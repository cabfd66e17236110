/*!
 * immortus.js: start a server job from a page and follow it to the end.
 * The browser client of pyramid_immortus. No dependencies; needs `fetch`.
 *
 *   <script src="…/immortus.js"></script>      -> window.Immortus
 *   const Immortus = require('…/immortus.js')  -> node
 *   import Immortus from '…/immortus.mjs'      -> ES module
 */
(function (root, asModule, factory) {
  'use strict';
  var api = factory();
  if (typeof module === 'object' && module && module.exports) {
    module.exports = api;
  }
  if (asModule && root) {
    // Evaluated as an ES module, by immortus.mjs, which takes it from here
    // at once (not from root.Immortus, which may be anything).
    root[typeof Symbol === 'function' ? Symbol['for']('pyramid_immortus') : '__pyramid_immortus__'] = api;
  }
  // The global of a classic <script> (set by the other forms too, when free).
  if (root && !root.Immortus) {
    root.Immortus = api;
  }
})(typeof globalThis !== 'undefined' ? globalThis : this, this === undefined, function () {
  'use strict';

  var PENDING = 0;
  var FULFILLED = 1;
  var REJECTED = 2;
  var STATES = ['queued', 'started', 'finished', 'failed', 'unknown'];

  var schedule = typeof queueMicrotask === 'function'
    ? queueMicrotask
    : function (fn) { Promise.resolve().then(fn); };

  function isFunction(x) { return typeof x === 'function'; }
  function isObject(x) { return x !== null && (typeof x === 'object' || typeof x === 'function'); }
  function assign(target) {
    for (var i = 1; i < arguments.length; i++) {
      var source = arguments[i];
      if (source) {
        for (var key in source) {
          if (Object.prototype.hasOwnProperty.call(source, key)) { target[key] = source[key]; }
        }
      }
    }
    return target;
  }

  /**
   * A Promises/A+ promise with progress notifications and cancellation: a
   * native Promise, whose `then(onFulfilled, onRejected, onProgress)` also
   * takes a progress callback.  Progress values pass on unchanged to derived
   * promises and to promises that adopt this one.
   */
  class ImmortusPromise extends Promise {
    constructor(executor) {
      let fulfil, reject;
      super((res, rej) => { fulfil = res; reject = rej; });
      this._state = PENDING;   // a native promise cannot tell it synchronously
      this._listeners = [];    // {onProgress, child} of each then() while pending
      this._parent = null;     // the promise this one was derived from by then()
      this._adopted = null;    // the promise this one follows after resolve(p)
      this._canceller = null;  // what cancel() calls on a root promise
      const settle = (state, nativeSettle) => (value) => {
        this._state = state;
        this._listeners = null;
        nativeSettle(value);
        // Never reported as an unhandled rejection (Node exits on one): a
        // promise cancel() rejected, or one progress() derived, need no handler.
        if (state === REJECTED) { super.then(undefined, () => {}); }
      };
      // `executor` is also the native then()'s, which makes each derived
      // promise with this constructor: a handler's result goes through
      // _resolve too.  The first call of resolve or reject wins.
      let resolved = false;
      executor((x) => {
        if (!resolved) { resolved = true; this._resolve(x, settle(FULFILLED, fulfil), settle(REJECTED, reject)); }
      }, (reason) => {
        if (!resolved) { resolved = true; settle(REJECTED, reject)(reason); }
      });
    }

    // The Promises/A+ resolution procedure, [[Resolve]](promise, x).  The
    // native one would call a thenable's then() without the progress
    // callback, so thenables are followed here and only plain values (or
    // reasons) reach the native promise.
    _resolve(x, fulfil, reject) {
      if (x === this) { reject(new TypeError('a promise cannot resolve to itself')); return; }
      let then;
      try {
        then = isObject(x) ? x.then : undefined;
      } catch (e) {
        reject(e);
        return;
      }
      if (!isFunction(then)) { fulfil(x); return; }
      if (x instanceof ImmortusPromise) { this._adopted = x; }
      let called = false;
      const once = (fn) => (value) => { if (!called) { called = true; fn(value); } };
      try {
        then.call(x, once((y) => this._resolve(y, fulfil, reject)), once(reject), (progress) => {
          if (!called) { this._notify(progress); }
        });
      } catch (e) {
        once(reject)(e);
      }
    }

    // Progress reaches the handlers (and derived promises) of a promise
    // still pending, a microtask later, like settlement.
    _notify(value) {
      if (this._state !== PENDING) { return; }
      const listeners = this._listeners.slice();
      schedule(() => listeners.forEach(({ onProgress, child }) => {
        if (isFunction(onProgress)) {
          try { onProgress(value); } catch (e) { reportError(e); }
        }
        child._notify(value);
      }));
    }

    // catch() and finally() are the native ones, which call this then().
    then(onFulfilled, onRejected, onProgress) {
      const child = super.then(onFulfilled, onRejected);  // an ImmortusPromise too
      child._parent = this;
      if (this._state === PENDING) { this._listeners.push({ onProgress, child }); }
      return child;
    }

    /** Call `onProgress` with each progress notification; returns a derived promise. */
    progress(onProgress) {
      return this.then(undefined, undefined, onProgress);
    }

    /**
     * Stop the work behind this promise (polling, a request in flight): it,
     * and every promise derived from it, rejects with `{error: "cancelled"}`.
     * Returns true if there was pending work to cancel.
     */
    cancel() {
      if (this._state !== PENDING) { return false; }
      if (this._adopted) { return this._adopted.cancel(); }
      if (this._canceller) { this._canceller(); return true; }
      if (this._parent) { return this._parent.cancel(); }
      return false;
    }
  }

  function reportError(e) {
    if (typeof console !== 'undefined' && console.error) { console.error(e); }
  }

  /**
   * A new pending promise and the functions that settle it:
   * `{promise, resolve, reject, notify}`.  `canceller`, if given, is what
   * `promise.cancel()` calls.
   */
  function defer(canceller) {
    const d = {};
    d.promise = new ImmortusPromise((resolve, reject) => { d.resolve = resolve; d.reject = reject; });
    if (isFunction(canceller)) { d.promise._canceller = canceller; }
    d.notify = (value) => d.promise._notify(value);
    return d;
  }

  // -- HTTP ---------------------------------------------------------------

  function parseJSON(text) {
    if (!text) { return undefined; }
    try { return JSON.parse(text); } catch (e) { return undefined; }
  }

  // fetch() and read the body as JSON: {status, ok, data (undefined if not JSON)}
  function request(url, init) {
    return fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        return { status: response.status, ok: response.ok, data: parseJSON(text) };
      });
    });
  }

  // Whether a request to `url` stays on the page's own origin.  In a page
  // (or worker), `url` is resolved as fetch() will: against the document's
  // base URL (a <base> element moves it), else against location.  Without
  // a location (node), only a relative URL counts: it can only ever reach
  // the origin the code runs on.  An opaque ('null') origin is no one's.
  function sameOrigin(url) {
    if (typeof URL !== 'function') { return false; }
    try {
      if (typeof location !== 'undefined' && location && location.origin) {
        var base = typeof document !== 'undefined' && document && document.baseURI
          ? document.baseURI : location.href;
        return location.origin !== 'null' && new URL(String(url), base).origin === location.origin;
      }
    } catch (e) {
      return false;
    }
    var absolute = true;
    try { absolute = !!new URL(String(url)); } catch (e) { absolute = false; }
    if (absolute) { return false; }
    // relative, unless it leaves the base it is resolved against ("//host/")
    try {
      return new URL(String(url), 'http://relative.invalid/').origin === 'http://relative.invalid';
    } catch (e) {
      return false;
    }
  }

  // The CSRF token for a request to `url`: `options.csrfToken` or the page's
  // <meta name="csrf-token">, but only for the page's own origin (or any
  // origin with `options.csrfCrossOrigin: true`).
  function csrfToken(url, options) {
    if (options.csrfCrossOrigin !== true && !sameOrigin(url)) { return null; }
    if (options.csrfToken) { return options.csrfToken; }
    if (typeof document !== 'undefined' && document.querySelector) {
      var meta = document.querySelector('meta[name="csrf-token"]');
      if (meta) { return meta.getAttribute('content'); }
    }
    return null;
  }

  function errorMessage(e) {
    return 'network error: ' + (e && e.message ? e.message : String(e));
  }

  // What an HTTP answer that cannot be used rejects with: `fields`, then its
  // JSON object body as it is, with `status` (the HTTP code) when the body
  // has none; a body that is not a JSON object gives `{error, status}`.
  function answerFailure(answer, fields) {
    var data = answer.data;
    if (isObject(data) && !(data instanceof Array)) {
      var failure = assign({}, fields, data);
      if (failure.status === undefined) { failure.status = answer.status; }
      return failure;
    }
    return assign({}, fields, {
      error: 'HTTP ' + answer.status + ': the answer is not ' + (data === undefined ? 'JSON' : 'a JSON object'),
      status: answer.status
    });
  }

  // The same, for an answer that is retried: it always has an `error`.
  function retryFailure(answer, fields) {
    var failure = answerFailure(answer, fields);
    if (!failure.error) { failure.error = 'HTTP ' + answer.status; }
    return failure;
  }

  // Ties an operation to options.signal and to promise.cancel(); calls
  // onCancel once and tells whether the operation has been cancelled.
  function cancellation(options, onCancel) {
    var state = { cancelled: false, controller: null };
    state.cancel = function () {
      if (state.cancelled) { return; }
      state.cancelled = true;
      if (state.controller) { state.controller.abort(); }
      onCancel();
    };
    var signal = options.signal;
    if (signal) {
      if (signal.aborted) {
        state.cancelled = true;
      } else {
        signal.addEventListener('abort', state.cancel);
        state.release = function () { signal.removeEventListener('abort', state.cancel); };
      }
    }
    state.newController = function () {
      state.controller = typeof AbortController === 'function' ? new AbortController() : null;
      return state.controller ? state.controller.signal : undefined;
    };
    state.done = function () {
      if (state.release) { state.release(); }
    };
    return state;
  }

  /**
   * Start a job: POST (or `options.method`) `options.data` as JSON to `url`,
   * with the CSRF token if `url` is on the page's own origin.
   * Resolves with the answer's JSON (`{job_id, job_class}`) on 2xx; rejects
   * otherwise with the JSON body plus `status` (the HTTP code) when it has
   * none, or with `{error, status}` when the answer is not JSON, and with
   * `{error}` on a network error or cancel.
   */
  function create(url, options) {
    options = options || {};
    var state;
    var d = defer(function () { state.cancel(); });
    state = cancellation(options, function () {
      d.reject({ error: 'cancelled' });
    });
    if (state.cancelled) {
      d.reject({ error: 'cancelled' });
      return d.promise;
    }
    var headers = assign({ Accept: 'application/json' }, options.headers);
    var token = csrfToken(url, options);
    if (token) { headers['X-CSRF-Token'] = token; }
    var init = {
      method: options.method || 'POST',
      headers: headers,
      credentials: options.credentials || 'same-origin',
      signal: state.newController()
    };
    if (options.data !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.data);
    }
    request(url, init).then(function (answer) {
      if (state.cancelled) { return; }
      state.done();
      if (answer.ok && answer.data !== undefined) {
        d.resolve(answer.data);
      } else {
        d.reject(answerFailure(answer, {}));
      }
    }, function (e) {
      if (state.cancelled) { return; }
      state.done();
      d.reject({ error: errorMessage(e) });
    });
    return d.promise;
  }

  function verifyBase(options) {
    return (options.verifyPath || Immortus.defaults.verifyPath).replace(/\/+$/, '');
  }

  function verifyUrl(jobInfo, options) {
    if (jobInfo.verify_job_url) { return jobInfo.verify_job_url; }
    var url = verifyBase(options) + '/' + encodeURIComponent(jobInfo.job_id);
    if (jobInfo.job_class) { url += '/' + encodeURIComponent(jobInfo.job_class); }
    return url;
  }

  function isRetryable(status) { return status === 502 || status === 503 || status === 504; }

  // The rhythm shared by verify and verifyAll: `poll` runs at once, then
  // whenever `next` or `retry` says; cancel, timeout and persistent errors
  // end it through `finish(outcome, value)`, which runs once.  `fields` are
  // merged into the errors it makes itself ({job_id} for verify).
  function pollingLoop(options, fields, finish) {
    var polling = assign({}, Immortus.defaults.polling, options.polling);
    var loop = { settled: false, retries: 0, timer: null, deadline: null };

    loop.finish = function (outcome, value) {
      if (loop.settled) { return; }
      loop.settled = true;
      clearTimeout(loop.timer);
      clearTimeout(loop.deadline);
      loop.state.done();
      finish(outcome, value);
    };
    loop.fail = function (error) {
      loop.finish(REJECTED, assign({}, fields, { error: error }));
    };
    loop.next = function (delay) {
      if (!loop.settled) { loop.timer = setTimeout(loop.poll, delay === undefined ? polling.interval : delay); }
    };
    // A network error or 502/503/504: try again with exponential backoff.
    loop.retry = function (failure) {
      if (loop.retries >= polling.retries) {
        loop.finish(REJECTED, failure);
        return;
      }
      loop.retries += 1;
      loop.next(Math.min(polling.interval * Math.pow(2, loop.retries), polling.maxBackoff));
    };
    loop.answered = function () { loop.retries = 0; };
    loop.get = function (url) {
      return request(url, {
        method: 'GET',
        headers: { Accept: 'application/json' },
        credentials: options.credentials || 'same-origin',
        signal: loop.state.newController()
      });
    };
    loop.start = function (poll) {
      loop.poll = function () { if (!loop.settled) { poll(); } };
      loop.state = cancellation(options, function () { loop.fail('cancelled'); });
      if (loop.state.cancelled) {
        loop.fail('cancelled');
        return;
      }
      if (polling.timeout) {
        loop.deadline = setTimeout(function () {
          if (loop.state.controller) { loop.state.controller.abort(); }
          loop.fail('timeout');
        }, polling.timeout);
      }
      loop.poll();
    };
    return loop;
  }

  // -- server push (the events gateway) -------------------------------

  // The EventSource constructor to use, or null: options.EventSource, then
  // Immortus.defaults.EventSource, then the global one.
  function eventSourceClass(options) {
    var ES = options.EventSource || Immortus.defaults.EventSource;
    if (!ES && typeof EventSource === 'function') { ES = EventSource; }
    return isFunction(ES) ? ES : null;
  }

  function eventsUrlOf(options) {
    var url = options.eventsUrl !== undefined ? options.eventsUrl : Immortus.defaults.eventsUrl;
    return url ? String(url) : null;
  }

  // Whether `options` asks for push and it can be tried here.
  function canStream(options) {
    return !!(eventsUrlOf(options) && eventSourceClass(options));
  }

  // A stream entry as verify answers it: without `code`; a non-200 one
  // with `status` (the code) unless it has a status of its own.
  function entryAnswer(entry) {
    var data = assign({}, entry);
    delete data.code;
    if (entry.code !== 200 && data.status === undefined) { data.status = entry.code; }
    return data;
  }

  // Follow jobs over one EventSource: `GET {eventsUrl}?ids=...[&job_class=]`
  // for the ids `ids()` returns (the jobs still followed).  `take(entry)`
  // gets each job event.  `fallback()` is called once, and the stream closed,
  // when it cannot serve: it failed before its first event, it failed
  // `polling.retries` times in a row after that (each time reopened with
  // exponential backoff), or it ended with jobs still followed.
  function eventStream(options, jobClass, ids, take, fallback) {
    var ES = eventSourceClass(options);
    var base = eventsUrlOf(options);
    var polling = assign({}, Immortus.defaults.polling, options.polling);
    var withCredentials = options.credentials === 'include' ||
      (options.credentials !== 'omit' && !sameOrigin(base));
    var s = { source: null, timer: null, closed: false, failures: 0, served: false };

    s.close = function () {
      s.closed = true;
      clearTimeout(s.timer);
      if (s.source) { s.source.close(); s.source = null; }
    };
    function giveUp() {
      if (s.closed) { return; }
      s.close();
      fallback();
    }
    function open() {
      if (s.closed) { return; }
      var list = ids();
      if (!list.length) { s.close(); return; }
      var url = base + (base.indexOf('?') >= 0 ? '&' : '?') + 'ids=' + list.map(encodeURIComponent).join(',');
      if (jobClass) { url += '&job_class=' + encodeURIComponent(jobClass); }
      var source;
      try {
        source = new ES(url, { withCredentials: withCredentials });
      } catch (e) {
        giveUp();
        return;
      }
      s.source = source;
      source.addEventListener('job', function (event) {
        if (s.source !== source) { return; }
        s.served = true;
        s.failures = 0;
        var entry = parseJSON(event.data);
        if (isObject(entry) && typeof entry.job_id === 'string' && typeof entry.code === 'number') {
          take(entry);
        }
      });
      source.addEventListener('end', function () {
        if (s.source !== source) { return; }
        source.close();
        s.source = null;
        if (ids().length) { giveUp(); } else { s.close(); }
      });
      source.onerror = function () {
        if (s.source !== source) { return; }
        // the browser would reconnect with every id: reopen with those left
        source.close();
        s.source = null;
        if (!s.served || s.failures >= polling.retries) {
          giveUp();
          return;
        }
        s.failures += 1;
        s.timer = setTimeout(open, Math.min(polling.interval * Math.pow(2, s.failures), polling.maxBackoff));
      };
    }
    open();
    return s;
  }

  /**
   * Follow a job until it ends: GET its verify URL, the first request at
   * once and each next one `polling.interval` ms after the previous answer.
   * Notifies progress with each unfinished answer; resolves with the answer
   * whose `completed` is true; rejects with one whose `failed` is true, with
   * a non-2xx answer's body (plus `job_id` and `status`, the HTTP code,
   * when it has none; `{job_id, error, status}` when it is not JSON), and
   * with `{job_id, error}` on timeout, cancel, or a network error or
   * 502/503/504 that persisted through `polling.retries` retries.
   */
  function verify(jobInfo, options) {
    options = options || {};
    var loop;
    var d = defer(function () { loop.state.cancel(); });
    if (!jobInfo || (!jobInfo.job_id && !jobInfo.verify_job_url)) {
      d.reject({ error: 'missing job_id' });
      return d.promise;
    }
    var jobId = jobInfo.job_id;
    var url = verifyUrl(jobInfo, options);
    var stream = null;
    var streaming = !jobInfo.verify_job_url && canStream(options);
    loop = pollingLoop(options, { job_id: jobId }, function (outcome, value) {
      if (stream) { stream.close(); }
      if (outcome === FULFILLED) { d.resolve(value); } else { d.reject(value); }
    });
    function pushed(entry) {
      if (loop.settled || entry.job_id !== String(jobId)) { return; }
      var data = entryAnswer(entry);
      if (entry.code !== 200) {
        loop.finish(REJECTED, data);
      } else if (data.failed === true) {
        loop.finish(REJECTED, data);
      } else if (data.completed === true) {
        loop.finish(FULFILLED, data);
      } else {
        d.notify(data);
      }
    }
    loop.start(function () {
      if (streaming) {
        if (!stream) {
          stream = eventStream(options, jobInfo.job_class, function () {
            return loop.settled ? [] : [String(jobId)];
          }, pushed, function () {
            streaming = false;
            loop.poll();
          });
        }
        return;
      }
      loop.get(url).then(function (answer) {
        if (loop.settled) { return; }
        var data = answer.data;
        if (answer.ok) {
          if (!isObject(data)) {
            loop.finish(REJECTED, answerFailure(answer, { job_id: jobId }));
          } else if (data.failed === true) {
            loop.finish(REJECTED, data);
          } else if (data.completed === true) {
            loop.finish(FULFILLED, data);
          } else {
            loop.answered();
            d.notify(data);
            loop.next();
          }
        } else if (isRetryable(answer.status)) {
          loop.retry(retryFailure(answer, { job_id: jobId }));
        } else {
          loop.finish(REJECTED, answerFailure(answer, { job_id: jobId }));
        }
      }, function (e) {
        if (!loop.settled) { loop.retry({ job_id: jobId, error: errorMessage(e) }); }
      });
    });
    return d.promise;
  }

  /**
   * Follow many jobs with one poll: `GET {verifyPath}?ids=...` (one request
   * per `job_class`, at most `options.batchMax` ids each).  The promise
   * notifies progress with each job's answer as it comes, and resolves when
   * every job has ended with `{jobs: {job_id: last answer}}`; `promise.jobs`
   * holds one promise per job id, settled as `verify`'s would be.
   * Jobs with a `verify_job_url` are followed with `verify`; cancelling a
   * job's promise stops following it, and when the whole settles (every
   * job ended, cancel, timeout) nothing it started polls any more.  An id
   * the batch request cannot carry (one with a comma) rejects at once with
   * `{job_id, error: "malformed job id"}`, as the server would.
   */
  function verifyAll(jobInfos, options) {
    options = options || {};
    var loop;
    var overall = defer(function () { loop.state.cancel(); });
    var jobs = {};
    var final = {};
    var pending = {};   // job_id -> {info, deferred}
    var outstanding = 0;

    function ended(jobId, outcome, value) {
      var entry = pending[jobId];
      if (!entry) { return; }
      delete pending[jobId];
      final[jobId] = value;
      if (outcome === FULFILLED) { entry.deferred.resolve(value); } else { entry.deferred.reject(value); }
      outstanding -= 1;
      if (outstanding === 0 && loop && !loop.settled) { loop.finish(FULFILLED, { jobs: final }); }
    }

    (jobInfos || []).forEach(function (info, index) {
      var jobId = info && info.job_id;
      var key = jobId || 'missing-' + index;
      if (jobs[key]) { return; }
      var deferred = defer(function () {
        var entry = pending[key];
        ended(key, REJECTED, { job_id: jobId, error: 'cancelled' });
        if (entry && entry.single) { entry.single.cancel(); }
      });
      jobs[key] = deferred.promise;
      outstanding += 1;
      pending[key] = { info: info, deferred: deferred };
      if (!jobId && !(info && info.verify_job_url)) {
        schedule(function () { ended(key, REJECTED, { error: 'missing job_id' }); });
      } else if (!info.verify_job_url && String(jobId).indexOf(',') >= 0) {
        // ?ids= is split on commas: this id would never be answered
        schedule(function () { ended(key, REJECTED, { job_id: jobId, error: 'malformed job id' }); });
      } else if (info.verify_job_url) {
        // its timeout is the whole's (below), which then rejects it with it
        var single = pending[key].single = verify(info, assign({}, options, {
          polling: assign({}, options.polling, { timeout: null })
        }));
        single.then(function (data) { ended(key, FULFILLED, data); },
          function (data) { ended(key, REJECTED, data); },
          function (data) { deferred.notify(data); overall.notify(data); });
      }
    });
    overall.promise.jobs = jobs;
    if (outstanding === 0) {
      overall.resolve({ jobs: final });
      return overall.promise;
    }

    var streams = [];
    var idle = false;  // the polling loop has nothing to poll
    loop = pollingLoop(options, {}, function (outcome, value) {
      streams.forEach(function (stream) { stream.close(); });
      var singles = [];
      for (var jobId in pending) {
        if (pending[jobId].single) { singles.push(pending[jobId].single); }
        ended(jobId, REJECTED, assign({}, value, { job_id: jobId }));
      }
      singles.forEach(function (single) { single.cancel(); });
      if (outcome === FULFILLED) { overall.resolve(value); } else { overall.reject(value); }
    });

    // The batch requests for the jobs polled (with `all`: every job).
    function batches(all) {
      var groups = {};
      var max = options.batchMax || Immortus.defaults.batchMax;
      for (var jobId in pending) {
        var info = pending[jobId].info;
        if (!info || info.verify_job_url || !info.job_id || String(info.job_id).indexOf(',') >= 0) { continue; }
        if (pending[jobId].streamed && !all) { continue; }
        var cls = info.job_class || '';
        var list = groups[cls] = groups[cls] || [[]];
        if (list[list.length - 1].length >= max) { list.push([]); }
        list[list.length - 1].push(jobId);
      }
      var urls = [];
      for (var c in groups) {
        groups[c].forEach(function (ids) {
          var query = 'ids=' + ids.map(encodeURIComponent).join(',');
          if (c) { query += '&job_class=' + encodeURIComponent(c); }
          urls.push({ ids: ids, url: verifyBase(options) + '?' + query });
        });
      }
      return urls;
    }

    function take(entryId, data) {
      var code = data.code;
      if (code === 200 && data.failed === true) {
        ended(entryId, REJECTED, data);
      } else if (code === 200 && data.completed === true) {
        ended(entryId, FULFILLED, data);
      } else if (code === 200) {
        pending[entryId].deferred.notify(data);
        overall.notify(data);
      } else if (!isRetryable(code)) {
        ended(entryId, REJECTED, data);
      }
      return isRetryable(code);
    }

    // Push: one stream per batch request polling would make (one in all,
    // unless the jobs have several job_class or are more than batchMax).
    if (canStream(options)) {
      batches(true).forEach(function (group) {
        group.ids.forEach(function (jobId) { pending[jobId].streamed = true; });
        streams.push({ ids: group.ids, jobClass: pending[group.ids[0]].info.job_class });
      });
    }

    loop.start(function () {
      var requests = batches();
      if (requests.length === 0) { idle = true; return; }  // pushed, or verify_job_url jobs
      Promise.all(requests.map(function (r) {
        return loop.get(r.url).then(function (answer) { return { ids: r.ids, answer: answer }; });
      })).then(function (results) {
        if (loop.settled) { return; }
        var retry = null;
        results.forEach(function (result) {
          var answer = result.answer;
          var data = answer.data;
          if (answer.ok && isObject(data) && isObject(data.jobs)) {
            result.ids.forEach(function (jobId) {
              var entry = Object.prototype.hasOwnProperty.call(data.jobs, jobId) ? data.jobs[jobId] : undefined;
              if (!pending[jobId]) { return; }
              if (!isObject(entry)) {
                ended(jobId, REJECTED, { job_id: jobId, error: 'the batch answer has no entry for this job' });
              } else if (take(jobId, entry)) {
                retry = assign({ job_id: jobId }, entry);
              }
            });
          } else if (isRetryable(answer.status)) {
            retry = retryFailure(answer, {});
          } else {
            var failure = answerFailure(answer, {});
            if (answer.ok && !failure.error) { failure.error = 'HTTP ' + answer.status + ': the answer has no jobs'; }
            result.ids.forEach(function (jobId) {
              ended(jobId, REJECTED, assign({}, failure, { job_id: jobId }));
            });
          }
        });
        if (loop.settled) { return; }
        if (retry) { loop.retry(retry); } else { loop.answered(); loop.next(); }
      }, function (e) {
        if (!loop.settled) { loop.retry({ error: errorMessage(e) }); }
      });
    });
    streams = streams.map(function (group) {
      return eventStream(options, group.jobClass, function () {
        return group.ids.filter(function (jobId) { return !!pending[jobId]; });
      }, function (entry) {
        var jobId = entry.job_id;
        if (loop.settled || !pending[jobId] || group.ids.indexOf(jobId) < 0) { return; }
        take(jobId, entry);
      }, function () {
        // poll these jobs from now on
        group.ids.forEach(function (jobId) { if (pending[jobId]) { pending[jobId].streamed = false; } });
        if (idle && !loop.settled) {
          idle = false;
          loop.poll();
        }
      });
    });
    return overall.promise;
  }

  /**
   * Cancel a job: `POST {verifyPath}/{job_id}/cancel` with the CSRF token.
   * Resolves with `{job_id, cancelled: true}` (it had not started) or
   * `{job_id, stopping: true}` (it was asked to stop); rejects with the
   * answer's body (409: it has ended, 404: unknown).
   */
  function cancel(jobInfo, options) {
    options = options || {};
    if (!jobInfo || !jobInfo.job_id) {
      return ImmortusPromise.reject({ error: 'missing job_id' });
    }
    var url = verifyBase(options) + '/' + encodeURIComponent(jobInfo.job_id) + '/cancel';
    if (jobInfo.job_class) { url += '?job_class=' + encodeURIComponent(jobInfo.job_class); }
    return create(url, assign({}, options, { method: 'POST', data: undefined }));
  }

  /**
   * One of "queued", "started", "finished", "failed", "unknown" for a
   * verify answer (or rejection), for code that wants a switch.
   */
  function status(data) {
    if (!isObject(data)) { return 'unknown'; }
    if (STATES.indexOf(data.status) >= 0) { return data.status; }
    if (data.completed === true) { return 'finished'; }
    if (data.failed === true || data.error) { return 'failed'; }
    if (data.completed === false) { return 'started'; }
    return 'unknown';
  }

  var Immortus = {
    version: '0.1.0.dev0',
    defaults: {
      verifyPath: '/immortus/verify',
      eventsUrl: null,
      EventSource: null,
      batchMax: 100,
      polling: { interval: 500, retries: 3, timeout: null, maxBackoff: 30000 }
    },
    Promise: ImmortusPromise,
    defer: defer,
    create: create,
    verify: verify,
    verifyAll: verifyAll,
    cancel: cancel,
    status: status,
    STATES: STATES.slice()
  };
  return Immortus;
});
