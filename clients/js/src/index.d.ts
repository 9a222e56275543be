// Types of @chatstream/client (hand-written; the package is plain ES modules).
// The wire shapes are docs/design.md §6 and §9; docs/protocol.md has the details.

// ---------------------------------------------------------------- wire

export type MessageStatus = 'pending' | 'generating' | 'complete' | 'error' | 'stopped' | 'interrupted';
export type ErrorCode = 'bad_request' | 'not_found' | 'unauthorized' | 'rate_limited' | 'quota_exceeded' | 'conflict' | 'internal';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  reasoningTokens?: number;
}

export interface Attachment {
  type: 'image' | 'file' | 'audio';
  name: string;
  storageId: string;
  mimeType: string;
  size: number;
  metadata?: Record<string, unknown> | null;
}

/** Server → client events of a generation (and the client's own `truncate`). */
export type StreamEvent =
  | { type: 'start'; messageId: string; conversationId: string }
  | { type: 'text-delta'; messageId: string; offset: number; delta: string }
  | { type: 'reasoning-start'; messageId: string }
  | { type: 'reasoning-delta'; messageId: string; offset: number; delta: string }
  | { type: 'reasoning-end'; messageId: string }
  | { type: 'source'; messageId: string; position: number; url: string; title?: string; snippet?: string }
  | { type: 'tool-input-start'; messageId: string; toolCallId: string; toolName: string; textPosition: number }
  | { type: 'tool-input-delta'; messageId: string; toolCallId: string; inputTextDelta: string }
  | { type: 'tool-input-available'; messageId: string; toolCallId: string; toolName: string; input: unknown; textPosition: number }
  | { type: 'tool-output-available'; messageId: string; toolCallId: string; output: unknown }
  | { type: 'tool-output-error'; messageId: string; toolCallId: string; errorText: string }
  | { type: 'finish'; messageId: string; status: MessageStatus; finishReason: string; usage: Usage; error?: string }
  | { type: 'error'; id?: string | number; messageId?: string; code: ErrorCode; message: string }
  /** Client-side: the server kept less than was shown (a restart); the text and reasoning are now this long. */
  | { type: 'truncate'; messageId: string; textLength: number; reasoningLength: number };

export interface ChangedEvent {
  type: 'changed';
  entity: 'conversation' | 'message';
  op: 'insert' | 'update' | 'delete';
  id: string;
  conversationId: string;
  data?: Record<string, unknown>;
}

export interface Ack {
  type: 'ack';
  id: string;
  conversationId: string;
  userMessageId: string;
  messageId: string;
}

export interface ReplaceResult {
  conversationId: string;
  messageId: string;
  replacedMessageId: string;
  removedMessageIds: string[];
}

/** A `listMessages` / `getMessage` row (camelCase). Fields a server does not have yet are absent. */
export interface MessageRow {
  id: string;
  conversationId: string;
  role: 'user' | 'assistant' | 'system';
  content: string;
  partialContent: string | null;
  status: MessageStatus;
  model: string | null;
  error: string | null;
  finishReason: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  cost?: number | null;
  tokensPerSecond: number | null;
  generationStartedAt: number | null;
  firstTokenAt: number | null;
  generationCompletedAt: number | null;
  reasoning?: string | null;
  partialReasoning?: string | null;
  reasoningTokens?: number | null;
  thinkingStartedAt?: number | null;
  thinkingCompletedAt?: number | null;
  sources?: Array<{ position: number; url: string; title?: string; snippet?: string }>;
  createdAt: number;
  updatedAt: number;
}

/** A `getToolCalls` row (arguments and result are JSON text). */
export interface ToolCallRow {
  id: string;
  name: string;
  arguments: string;
  result?: string;
  timestamp: number;
  textPosition: number | null;
  isPartial: boolean;
}

// ---------------------------------------------------------------- UI state (reducer)

export type ToolCallState = 'input-streaming' | 'input-available' | 'output-available' | 'output-error';

export interface ToolCall {
  id: string;
  name: string;
  /** UTF-16 offset into the message text where the call is drawn. */
  textPosition: number | null;
  inputText: string;
  input: unknown;
  output: unknown;
  errorText: string | null;
  state: ToolCallState;
}

export interface Source {
  position: number;
  url: string;
  title?: string;
  snippet?: string;
}

export interface Timing {
  generationStartedAt: number | null;
  thinkingStartedAt: number | null;
  thinkingCompletedAt: number | null;
  firstTokenAt: number | null;
  generationCompletedAt: number | null;
  tokensPerSecond: number | null;
}

export interface MessageState {
  id: string;
  conversationId: string | null;
  role: 'user' | 'assistant' | 'system' | string;
  text: string;
  status: MessageStatus | 'sending' | 'failed' | string;
  model: string | null;
  error: string | null;
  finishReason: string | null;
  usage: Usage | null;
  createdAt: number | null;
  toolCalls: ToolCall[];
  attachments: Attachment[];
  sources: Source[];
  reasoning: string;
  reasoningState: 'none' | 'streaming' | 'done';
  reasoningTokens: number | null;
  timing: Timing | null;
  gap: { expected: number; got: number } | null;
  reasoningGap: { expected: number; got: number } | null;
}

export const TERMINAL: Set<string>;
export function isTerminal(status: string): boolean;
export function createMessage(fields: Partial<MessageState> & { id: string }): MessageState;
export function messageFromRow(row: MessageRow): MessageState;
export function toolCallFromRow(row: ToolCallRow): ToolCall;
export function mergeToolCall(a: ToolCall | undefined, b: ToolCall): ToolCall;
export function withToolCallRows(msg: MessageState, rows: ToolCallRow[]): MessageState;
export function mergeMessage(mine: MessageState | undefined, row: MessageRow): MessageState;
export function reduceMessage(msg: MessageState, ev: StreamEvent): MessageState;
/** The new state and the event as a consumer should see it (null for a replayed duplicate). */
export function applyEvent(msg: MessageState, ev: StreamEvent): { msg: MessageState; effect: StreamEvent | null };
export function toolFailure(output: unknown): string | null;
export function timingFromRow(row: Partial<MessageRow>): Timing | null;
/** TTFT = firstTokenAt - generationStartedAt; null when unknown. */
export function answerSpeed(msg: MessageState): { ttftMs: number | null; tokensPerSecond: number | null; thinkingMs: number | null };
export function isToolCallPending(call: ToolCall, msg: MessageState): boolean;
export function needsSubscription(msg: MessageState): boolean;

// ---------------------------------------------------------------- offsets

export type ApplyResult =
  | { text: string; kind: 'append'; applied: number }
  | { text: string; kind: 'overlap'; applied: number; mismatch: boolean }
  | { text: string; kind: 'duplicate'; applied: 0; mismatch: boolean }
  | { text: string; kind: 'gap'; applied: 0; missing: number };
export function applyDelta(text: string, offset: number | undefined, delta: string): ApplyResult;
export function insertionPoint(text: string, textPosition: number | null | undefined): number;
export type Segment<T> = { type: 'text'; text: string; start: number; end: number } | { type: 'tool'; call: T; position: number };
export function segment<T extends { textPosition?: number | null }>(text: string, toolCalls?: T[]): Segment<T>[];
export function mergeStreamText(mine: string | null | undefined, authoritative: string | null | undefined): string;
export function splitsSurrogatePair(text: string, pos: number): boolean;

// ---------------------------------------------------------------- socket layer

export class ProtocolError extends Error {
  /** The server's code, or the client's: disconnected, timeout, closed. */
  code: ErrorCode | 'disconnected' | 'timeout' | 'closed' | string;
  event: unknown;
  constructor(code: string, message: string, event?: unknown);
}

export interface ConnectionStatus {
  state: 'idle' | 'connecting' | 'open' | 'waiting' | 'closed';
  attempt: number;
  everOpened: boolean;
  retryInMs?: number;
  code?: number;
  reason?: string;
}

export interface Timers {
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
  setInterval(f: () => void, ms: number): unknown;
  clearInterval(t: unknown): void;
  now(): number;
}

/** Any class with the browser WebSocket's constructor, send/close and on* handlers (e.g. `ws`). */
export type WebSocketClass = new (url: string) => {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((...a: any[]) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((...a: any[]) => void) | null;
};

/** The socket layer: request/reply by id, backoff, heartbeat. connect() builds on it. */
export class ChatClient {
  constructor(options: {
    url: string | (() => string);
    WebSocketImpl?: WebSocketClass;
    onEvent?: (ev: any, frame: object | null) => void;
    onStatus?: (status: ConnectionStatus) => void;
    onOpen?: () => void;
    timers?: Partial<Timers>;
    rng?: () => number;
    requestTimeoutMs?: number;
    heartbeatMs?: number;
  });
  readonly isOpen: boolean;
  state: ConnectionStatus['state'];
  ws: InstanceType<WebSocketClass> | null;
  timers: Timers;
  connect(): void;
  close(): void;
  reconnectNow(): void;
  request(frame: object, options?: { onReply?: (reply: any) => void }): Promise<any>;
  query(name: string, args?: object): Promise<any>;
  send(frame: object, onError?: (error: any, frame: object) => void): boolean;
  subscribe(messageId: string, fromOffset?: number): boolean;
  cancel(messageId: string): boolean;
}

export function backoffDelay(attempt: number, rng?: () => number, baseMs?: number, capMs?: number): number;
export function buildWsUrl(o: { base: string; user?: string; token?: string }): string;
export function defaultWsBase(location: { protocol: string; host: string }): string;
export function fileUrl(wsUrl: string, storageId: string): string;
export function uploadUrl(wsUrl: string): string;
export function authHeaders(wsUrl: string): Record<string, string>;
export function needsAuthHeader(wsUrl: string): boolean;
export function fetchFile(wsUrl: string, storageId: string, fetchImpl?: typeof fetch): Promise<Blob>;
export function uploadFile(wsUrl: string, file: Blob & { name?: string }, fetchImpl?: typeof fetch): Promise<Attachment & { storageId: string }>;

// ---------------------------------------------------------------- connect()

export interface ConnectOptions {
  /** ws(s)://HOST:PORT/ws */
  url: string;
  /** A JWT, or a function asked on every reconnect (a fresh token). */
  token?: string | (() => string);
  /** Dev mode (server without --jwt-secret-env): the user name. */
  user?: string;
  /** Default globalThis.WebSocket; in Node 20 pass the `ws` package's class. */
  WebSocket?: WebSocketClass | (new (url: string) => any);
  heartbeatMs?: number;
  requestTimeoutMs?: number;
  /** Least time between two resubscribes of one message after gaps. */
  resyncMs?: number;
  timers?: Partial<Timers>;
  rng?: () => number;
}

export interface GenerateRequest {
  content: string;
  conversationId?: string | null;
  model?: string;
  attachments?: Attachment[];
}

export interface MessageChange {
  before: MessageState | undefined;
  event: StreamEvent | null;
  effect: StreamEvent | null;
}

/** One message's events, each once: iterate it, or await `done`. */
export class MessageStream<A = Ack | ReplaceResult | { messageId: string }> implements AsyncIterableIterator<StreamEvent> {
  /** Null until the server acknowledged the request. */
  messageId: string | null;
  /** The message state when the stream was bound to it. */
  initial: MessageState | null;
  readonly ack: Promise<A>;
  /** The final state (any terminal status); rejects on a refused request or an unknown message. */
  readonly done: Promise<MessageState>;
  readonly message: MessageState | null;
  cancel(): Promise<MessageState>;
  /** Stops this stream; the generation goes on and the client still follows it. */
  close(): void;
  next(): Promise<IteratorResult<StreamEvent>>;
  return(): Promise<IteratorResult<StreamEvent>>;
  [Symbol.asyncIterator](): this;
}

export class Watch implements AsyncIterableIterator<ChangedEvent> {
  readonly ready: Promise<void>;
  close(): void;
  next(): Promise<IteratorResult<ChangedEvent>>;
  return(): Promise<IteratorResult<ChangedEvent>>;
  [Symbol.asyncIterator](): this;
}

export interface ClientEvents {
  status: (status: ConnectionStatus) => void;
  open: () => void;
  message: (msg: MessageState, change: MessageChange) => void;
  event: (ev: StreamEvent | ChangedEvent) => void;
  error: (error: ProtocolError, frame: object | null) => void;
}

export class ChatstreamClient {
  constructor(options: ConnectOptions);
  /** Every message state the client knows, by id. */
  messages: Map<string, MessageState>;
  socket: ChatClient;
  readonly url: string;
  readonly state: ConnectionStatus['state'];
  readonly isOpen: boolean;
  open(): this;
  close(): void;
  reconnectNow(): void;
  on<K extends keyof ClientEvents>(type: K, fn: ClientEvents[K]): () => void;
  ready(): Promise<void>;
  request(frame: object, options?: { onReply?: (reply: any) => void }): Promise<any>;
  query(name: 'listConversations', args?: { cursor?: string; limit?: number }): Promise<{ conversations: any[]; nextCursor: string | null }>;
  query(name: 'listMessages', args: { conversationId: string; cursor?: string; limit?: number }): Promise<{ messages: MessageRow[]; nextCursor: string | null }>;
  query(name: 'getMessage', args: { messageId: string }): Promise<MessageRow>;
  query(name: 'getToolCalls', args: { messageId: string; includePartial?: boolean }): Promise<ToolCallRow[]>;
  query(name: 'getAttachments', args: { messageId: string }): Promise<Array<Attachment & { id: string; position: number }>>;
  query(name: string, args?: object): Promise<any>;
  mutate(name: 'createConversation' | 'updateConversation' | 'deleteConversation' | 'deleteMessage' | 'branch' | string, args?: object): Promise<any>;
  generate(request: GenerateRequest): MessageStream<Ack>;
  regenerate(messageId: string): MessageStream<ReplaceResult>;
  retry(messageId: string): MessageStream<ReplaceResult>;
  /** Follows a message from what the client (or the given state) holds, until it ends. */
  subscribe(target: string | (Partial<MessageState> & { id: string })): MessageStream<{ messageId: string }>;
  isFollowing(messageId: string): boolean;
  forget(messageId: string): void;
  update(messageId: string, fn: (msg: MessageState | undefined) => MessageState | undefined): MessageState | undefined;
  cancel(messageId: string): Promise<MessageState>;
  watch(options?: { onChange?: (ev: ChangedEvent) => void }): Watch;
}

export function connect(options: ConnectOptions): ChatstreamClient;

// ---------------------------------------------------------------- AI SDK (ai 5)

/** The UI message stream chunks this package emits (a subset of ai's UIMessageChunk). */
export type UIChunk =
  | { type: 'start'; messageId: string; messageMetadata: ChatstreamMetadata }
  | { type: 'text-start' | 'text-end' | 'reasoning-start' | 'reasoning-end'; id: string }
  | { type: 'text-delta' | 'reasoning-delta'; id: string; delta: string }
  | { type: 'tool-input-start'; toolCallId: string; toolName: string }
  | { type: 'tool-input-delta'; toolCallId: string; inputTextDelta: string }
  | { type: 'tool-input-available'; toolCallId: string; toolName: string; input: unknown }
  | { type: 'tool-output-available'; toolCallId: string; output: unknown }
  | { type: 'tool-output-error'; toolCallId: string; errorText: string }
  | { type: 'source-url'; sourceId: string; url: string; title?: string }
  | { type: 'error'; errorText: string }
  | { type: 'abort' }
  | { type: 'finish'; messageMetadata: ChatstreamMetadata };

/** `message.metadata` of an answer streamed by the transport. */
export interface ChatstreamMetadata {
  conversationId: string | null;
  status?: MessageStatus;
  finishReason?: string;
  usage?: Usage;
  error?: string;
}

export class UIChunkMapper {
  snapshot(msg: MessageState | null): UIChunk[];
  map(ev: StreamEvent, msg: MessageState): UIChunk[];
}

export function toUIMessageStream(stream: MessageStream<any>, options?: { abortSignal?: AbortSignal; onAbort?: (() => void) | null }): ReadableStream<UIChunk>;

/** Structurally the AI SDK's `ChatTransport<UIMessage>` (sendMessages, reconnectToStream). */
export class WebSocketChatTransport {
  constructor(options: {
    client: ChatstreamClient;
    /** useChat's stop() cancels the generation (default true). */
    cancelOnAbort?: boolean;
    /** Called when a chat id is paired with a new conversation id (store it to reopen the chat). */
    onConversation?: (chatId: string, conversationId: string) => void;
    /** Known pairs chat id → conversation id. */
    conversations?: Record<string, string>;
  });
  client: ChatstreamClient;
  cancelOnAbort: boolean;
  conversationIdOf(chatId: string): string;
  sendMessages(options: {
    trigger: 'submit-message' | 'regenerate-message';
    chatId: string;
    messageId: string | undefined;
    messages: Array<{ id: string; role: 'system' | 'user' | 'assistant'; parts: Array<{ type: string; text?: string } | any> }>;
    abortSignal: AbortSignal | undefined;
    headers?: Record<string, string> | Headers;
    body?: object;
    metadata?: unknown;
  }): Promise<ReadableStream<UIChunk>>;
  reconnectToStream(options: { chatId: string; abortSignal?: AbortSignal; headers?: Record<string, string> | Headers; body?: object; metadata?: unknown }): Promise<ReadableStream<UIChunk> | null>;
}

// ---------------------------------------------------------------- resume after a page reload

export class InflightStore {
  constructor(storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null, identity: string, now?: () => number);
  load(): Record<string, { messageId: string; conversationId: string | null; text: string; length: number; reasoning: string; savedAt: number }>;
  save(msg: { id: string; conversationId: string | null; text: string; reasoning?: string }): void;
  remove(messageId: string): void;
}
