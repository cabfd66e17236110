// Type-checked by events.test.js: the push options of the declarations.
import Immortus, { type EventSourceClass } from '../../pyramid_immortus/static/immortus';

Immortus.defaults.eventsUrl = '/immortus/events';
const ES: EventSourceClass = EventSource;
Immortus.verify({ job_id: 'x' }, { eventsUrl: '/immortus/events', EventSource: ES })
  .then((done) => done.completed, undefined, (progress) => progress.progress?.percent);
Immortus.verifyAll([{ job_id: 'a' }], { eventsUrl: null }).jobs['a'].cancel();
