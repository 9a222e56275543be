// Persistence of in-flight messages across a page reload (sessionStorage), so
// that a reload mid-stream resumes the same message from the UTF-16 length
// of text (and reasoning) already rendered instead of starting over. Storage is injected (any object
// with getItem/setItem/removeItem), so this module is testable in Node.

const PREFIX = 'chatstream.inflight:';
const MAX_AGE_MS = 24 * 3600 * 1000;

export class InflightStore {
  /** @param {Storage|null} storage  @param {string} identity  who is signed in ("u:alice", "t:…") */
  constructor(storage, identity, now = () => Date.now()) {
    this.storage = storage;
    this.key = PREFIX + identity;
    this.now = now;
  }

  /** @returns {Record<string, {messageId:string, conversationId:string|null, text:string, length:number, reasoning:string, savedAt:number}>} */
  load() {
    if (!this.storage) return {};
    try {
      const raw = JSON.parse(this.storage.getItem(this.key) ?? '{}');
      const out = {};
      for (const [id, r] of Object.entries(raw && typeof raw === 'object' ? raw : {})) {
        if (!r || typeof r.text !== 'string' || this.now() - (r.savedAt ?? 0) > MAX_AGE_MS) continue;
        // The length is what was rendered; keep it consistent with the text.
        out[id] = { ...r, messageId: id, length: r.text.length, reasoning: typeof r.reasoning === 'string' ? r.reasoning : '' };
      }
      return out;
    } catch {
      return {};
    }
  }

  /** Records (or refreshes) an in-flight message. */
  save(msg) {
    const all = this.load();
    all[msg.id] = { conversationId: msg.conversationId, text: msg.text, length: msg.text.length, savedAt: this.now() };
    if (msg.reasoning) all[msg.id].reasoning = msg.reasoning; // resumed from its own offset (fromReasoningOffset)
    this.#write(all);
  }

  remove(messageId) {
    const all = this.load();
    if (!(messageId in all)) return;
    delete all[messageId];
    this.#write(all);
  }

  #write(all) {
    if (!this.storage) return;
    try {
      if (Object.keys(all).length === 0) this.storage.removeItem(this.key);
      else this.storage.setItem(this.key, JSON.stringify(all));
    } catch {
      // Quota exceeded or storage disabled: resume falls back to the
      // server's partialContent, which is only slightly behind.
    }
  }
}
