// @chatstream/client: a WebSocket client of chatstream (docs/design.md §6, §9)
// with exact resume, a message reducer for UIs, and an AI SDK ChatTransport.
export { connect, ChatstreamClient, MessageStream, Watch } from './client.js';
export { WebSocketChatTransport, UIChunkMapper, toUIMessageStream } from './ai-sdk.js';
export {
  ChatClient,
  ProtocolError,
  backoffDelay,
  buildWsUrl,
  defaultWsBase,
  fileUrl,
  uploadUrl,
  authHeaders,
  needsAuthHeader,
  fetchFile,
  uploadFile,
} from './protocol.js';
export {
  TERMINAL,
  isTerminal,
  createMessage,
  messageFromRow,
  toolCallFromRow,
  mergeToolCall,
  withToolCallRows,
  mergeMessage,
  reduceMessage,
  applyEvent,
  toolFailure,
  timingFromRow,
  answerSpeed,
  isToolCallPending,
  needsSubscription,
} from './reducer.js';
export { applyDelta, insertionPoint, segment, mergeStreamText, splitsSurrogatePair } from './offsets.js';
export { InflightStore } from './resume.js';
