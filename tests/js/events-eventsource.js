// A minimal EventSource for node (20 has none), on node:http: enough for
// immortus.js (addEventListener, onerror, close) against a real gateway.
// It counts what it opens, so that the tests can tell how many streams ran.
const http = require('node:http');

class NodeEventSource {
  constructor(url, init) {
    NodeEventSource.opened.push(this);
    this.url = url;
    this.withCredentials = !!(init && init.withCredentials);
    this.readyState = 0;
    this.listeners = {};
    this.onerror = null;
    this.events = 0;
    this.request = http.get(url, { headers: { Accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200 || !String(res.headers['content-type']).startsWith('text/event-stream')) {
        res.resume();
        this.fail();
        return;
      }
      this.readyState = 1;
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk) => {
        buffer += chunk;
        let at;
        while ((at = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          let type = 'message';
          const data = [];
          block.split('\n').forEach((line) => {
            if (line.startsWith('event: ')) { type = line.slice(7); }
            if (line.startsWith('data: ')) { data.push(line.slice(6)); }
          });
          if (data.length && this.readyState !== 2) {
            this.events += 1;
            (this.listeners[type] || []).forEach((fn) => fn({ type, data: data.join('\n') }));
          }
        }
      });
      res.on('end', () => this.fail());
      res.on('error', () => this.fail());
    });
    this.request.on('error', () => this.fail());
  }

  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }

  fail() {
    if (this.readyState === 2) { return; }
    this.readyState = 0;  // a browser would reconnect: the client decides
    if (this.onerror) { this.onerror({ type: 'error' }); }
  }

  close() {
    this.readyState = 2;
    this.request.destroy();
  }
}

NodeEventSource.opened = [];
module.exports = NodeEventSource;
