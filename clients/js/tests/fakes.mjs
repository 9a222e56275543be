// Test doubles: fake timers (time moves only when told) and a fake WebSocket
// class whose instances the test opens, feeds and drops by hand.

export class FakeTimers {
  t = 0;
  queue = [];
  seq = 0;
  now = () => this.t;
  setTimeout = (f, ms) => {
    const id = ++this.seq;
    this.queue.push({ id, at: this.t + ms, f });
    return id;
  };
  clearTimeout = (id) => {
    this.queue = this.queue.filter((q) => q.id !== id);
  };
  setInterval = (f, ms) => {
    const id = ++this.seq;
    const tick = () => this.queue.push({ id, at: this.t + ms, f: () => (tick(), f()) });
    tick();
    return id;
  };
  clearInterval = this.clearTimeout;
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at);
      const next = this.queue[0];
      if (!next || next.at > end) break;
      this.queue.shift();
      this.t = next.at;
      next.f();
    }
    this.t = end;
  }
}

export function fakeSocketClass() {
  const sockets = [];
  class FakeWS {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = false;
      sockets.push(this);
    }
    send(s) {
      this.sent.push(JSON.parse(s));
    }
    close(code = 1000) {
      if (this.closed) return;
      this.closed = true;
      this.onclose?.({ code });
    }
    open() {
      this.onopen?.();
    }
    recv(...frames) {
      for (const f of frames) this.onmessage?.({ data: JSON.stringify(f) });
    }
    drop() {
      this.closed = true;
      this.onclose?.({ code: 1006 });
    }
    /** The last frame sent of a type. */
    last(type) {
      return this.sent.findLast((f) => f.type === type);
    }
  }
  return { FakeWS, sockets };
}

/** Lets pending promise callbacks run. */
export const flush = () => new Promise((r) => setImmediate(r));
