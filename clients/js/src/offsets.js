// Pure text/offset logic of the chat stream (no DOM): importable by Node tests.
//
// All offsets are UTF-16 code units, which is exactly what JavaScript string
// indices and `.length` count, so we slice strings directly (docs/design.md §6).

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

/** True when `pos` falls between the two halves of a surrogate pair of `text`. */
export function splitsSurrogatePair(text, pos) {
  return pos > 0 && pos < text.length && isHigh(text.charCodeAt(pos - 1)) && isLow(text.charCodeAt(pos));
}

/**
 * Applies one `text-delta` to the text rendered so far.
 *
 * Returns `{ text, kind, applied }`:
 * - `append`:    offset === text.length, appended whole;
 * - `overlap`:   offset < text.length < offset + delta.length: the part we
 *                already have is cut off, the rest appended (`applied` units);
 * - `duplicate`: the whole delta lies inside what we already have: ignored
 *                (`mismatch` is true when it disagrees with our text);
 * - `gap`:       offset > text.length: units are missing, nothing applied; the
 *                caller re-subscribes with `fromOffset = text.length`.
 * A delta without a numeric offset is appended (lenient).
 */
export function applyDelta(text, offset, delta) {
  delta = typeof delta === 'string' ? delta : '';
  if (typeof offset !== 'number' || !Number.isFinite(offset) || offset === text.length) {
    return { text: text + delta, kind: 'append', applied: delta.length };
  }
  if (offset > text.length) return { text, kind: 'gap', applied: 0, missing: offset - text.length };
  const end = offset + delta.length;
  if (end <= text.length) {
    return { text, kind: 'duplicate', applied: 0, mismatch: text.slice(offset, end) !== delta };
  }
  const have = text.length - offset;
  const rest = delta.slice(have);
  return { text: text + rest, kind: 'overlap', applied: rest.length, mismatch: text.slice(offset) !== delta.slice(0, have) };
}

/**
 * Where a tool call is drawn inside `text`: its `textPosition` clamped to the
 * text, never between the halves of a surrogate pair (moved after the pair),
 * and, when unknown (legacy rows without a position), the end of the text.
 * A position past the current end (the text is still streaming in) is drawn
 * at the end and moves into place once the text reaches it.
 */
export function insertionPoint(text, textPosition) {
  if (typeof textPosition !== 'number' || !Number.isFinite(textPosition)) return text.length;
  let pos = Math.max(0, Math.min(Math.trunc(textPosition), text.length));
  if (splitsSurrogatePair(text, pos)) pos += 1;
  return pos;
}

/**
 * Splits `text` into the segments to render, with every tool call inserted
 * between text[0:pos] and text[pos:]. Calls at the same position keep their
 * order in `toolCalls` (arrival order). Empty text segments are omitted.
 *
 * @param {string} text
 * @param {Array<{textPosition?: number|null}>} toolCalls
 * @returns {Array<{type:'text', text:string, start:number, end:number} | {type:'tool', call:object, position:number}>}
 */
export function segment(text, toolCalls = []) {
  const placed = toolCalls
    .map((call, index) => ({ call, index, position: insertionPoint(text, call.textPosition) }))
    .sort((a, b) => a.position - b.position || a.index - b.index);
  const out = [];
  let at = 0;
  for (const { call, position } of placed) {
    if (position > at) out.push({ type: 'text', text: text.slice(at, position), start: at, end: position });
    at = Math.max(at, position);
    out.push({ type: 'tool', call, position });
  }
  if (text.length > at) out.push({ type: 'text', text: text.slice(at), start: at, end: text.length });
  return out;
}

/**
 * Merges a text we already hold with another copy of the same stream (a
 * persisted prefix, `partialContent` from the server, ...): when one is a
 * prefix of the other, the longer wins; otherwise the authoritative one.
 */
export function mergeStreamText(mine, authoritative) {
  mine = mine ?? '';
  authoritative = authoritative ?? '';
  if (mine.length > authoritative.length && mine.startsWith(authoritative)) return mine;
  return authoritative;
}
