// Type check (tsc --noEmit, run by tests/e2e/client_types.test.mjs): the
// hand-written types of @chatstream/client are valid TypeScript, and its
// transport and chunks fit the installed `ai` package's own types.
import { AbstractChat, type ChatTransport, type UIMessage, type UIMessageChunk } from 'ai';
import { connect, WebSocketChatTransport, type MessageState, type UIChunk } from '../../../clients/js/src/index.js';

const client = connect({ url: 'ws://127.0.0.1:8080/ws', user: 'alice', WebSocket: globalThis.WebSocket });

// The transport is a ChatTransport of ai 5, for the Chat class and useChat.
const transport: ChatTransport<UIMessage> = new WebSocketChatTransport({ client });
class Chat extends AbstractChat<UIMessage> {}
export type { Chat };

// Every chunk it emits is one of ai's UIMessageChunk shapes.
export function asAiChunk(chunk: UIChunk): UIMessageChunk {
  return chunk;
}

export async function plainJs(): Promise<MessageState> {
  const stream = client.generate({ content: 'hello' });
  const ack = await stream.ack;
  const id: string = ack.conversationId;
  for await (const ev of stream) {
    if (ev.type === 'text-delta' || ev.type === 'reasoning-delta') {
      const at: number = ev.offset;
      void at;
    }
  }
  client.on('message', (m, { before }) => void [m.text, before?.status]);
  void id;
  void transport;
  return stream.done;
}
