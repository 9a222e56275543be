// Test support: the `ws` WebSocket class, recording every frame sent and
// received per socket, so tests can check what the client asked for on each
// connection (the resume offsets) and what the server answered.
import WebSocket from 'ws';

/** A WebSocket class for connect({WebSocket}) and the log it fills: {sockets: [{ws, sent, received}]} */
export function spySocket() {
  const log = { sockets: [] };
  class SpyWebSocket extends WebSocket {
    constructor(url, ...rest) {
      super(url, ...rest);
      this.record = { ws: this, sent: [], received: [] };
      log.sockets.push(this.record);
      this.on('message', (data) => this.record.received.push(JSON.parse(data.toString())));
    }
    send(data, ...rest) {
      this.record.sent.push(JSON.parse(data));
      return super.send(data, ...rest);
    }
  }
  return { WebSocket: SpyWebSocket, log, current: () => log.sockets.at(-1) };
}

/** Resolves once `predicate()` is true (polled every 10 ms), or rejects after `ms`. */
export async function until(predicate, ms = 15000, what = 'condition') {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
