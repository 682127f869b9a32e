// Reads at most a bounded prefix of an HTTP response's body and leaves the
// rest unread. A receiver's answer is only quoted in a log line or decoded
// for a short status, so a huge or endless body must cost neither memory
// nor the time it would take to arrive: reading stops at the bound and the
// stream is cancelled, which closes the connection instead of draining it.
// The global fetch's and undici's Response types differ; both bodies read so.
interface ByteStreamReader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(): Promise<void>;
}

export async function readBodyPrefix(response: { body: { getReader(): ByteStreamReader } | null }, maxBytes: number): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    while (length < maxBytes) {
      const { done, value } = await reader.read();
      if (done || !value) break;
      const kept = value.byteLength > maxBytes - length ? value.subarray(0, maxBytes - length) : value;
      chunks.push(kept);
      length += kept.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const prefix = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    prefix.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return prefix;
}
