// A Server-Sent Events reader (GET /v1/jobs/{id}/events): reads a
// text/event-stream response and yields its events as they arrive.
export interface SseEvent {
  id?: string;
  event: string;
  data: unknown;
}

export async function* readSse(response: Response): AsyncGenerator<SseEvent> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event: SseEvent = { event: "message", data: "" };
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event.event = value;
          else if (field === "id") event.id = value;
          else if (field === "data") data.push(value);
        }
        if (data.length === 0) continue;
        const text = data.join("\n");
        try {
          event.data = JSON.parse(text);
        } catch {
          event.data = text;
        }
        yield event;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
