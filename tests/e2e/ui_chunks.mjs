// Test support: every UI message chunk checked against the installed `ai`
// package's own schema (uiMessageChunkSchema) as it passes.
import { uiMessageChunkSchema } from 'ai';

const schema = uiMessageChunkSchema();

/** The same stream of chunks; errors with the chunk and the reason when one is not a valid UIMessageChunk. */
export function validated(stream, seen = []) {
  return stream.pipeThrough(
    new TransformStream({
      async transform(chunk, controller) {
        const r = await schema.validate(chunk);
        if (!r.success) throw new Error(`not a UIMessageChunk of ai: ${JSON.stringify(chunk)}: ${r.error?.message}`);
        seen.push(chunk);
        controller.enqueue(chunk);
      },
    }),
  );
}
