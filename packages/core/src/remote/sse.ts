/**
 * A Server-Sent Events parser (the WHATWG "event stream" format), for the exec and code streams
 * of a Kiln server. Our own rather than a dependency: the format is a few lines of spec, core
 * keeps its dependencies to the engine client, and browsers' EventSource cannot POST or send an
 * Authorization header anyway, so only the parsing is needed (not reconnection or `retry`).
 */

export interface SseEvent {
  /** The `event:` field; "message" when the server sent none. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The `id:` field, when sent. */
  id?: string;
}

/** Feed it text as it arrives, in chunks of any size; it returns the events each chunk completed. */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #event = "";
  #id: string | undefined;
  #started = false;
  /** The previous chunk ended in "\r": a "\n" opening the next chunk belongs to that line end. */
  #pendingCr = false;

  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (!this.#started && text.length > 0) {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.#pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.#pendingCr = false;
    this.#buffer += text;
    const events: SseEvent[] = [];
    let at = 0;
    for (;;) {
      const cr = this.#buffer.indexOf("\r", at);
      const lf = this.#buffer.indexOf("\n", at);
      if (cr === -1 && lf === -1) break;
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      const line = this.#buffer.slice(at, end);
      if (this.#buffer[end] === "\r") {
        if (end + 1 === this.#buffer.length) {
          // "\r" as the chunk's last character: a "\n" may follow in the next chunk.
          this.#pendingCr = true;
          at = end + 1;
        } else at = this.#buffer[end + 1] === "\n" ? end + 2 : end + 1;
      } else at = end + 1;
      const event = this.#line(line);
      if (event) events.push(event);
    }
    this.#buffer = this.#buffer.slice(at);
    return events;
  }

  #line(line: string): SseEvent | undefined {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return undefined; // a comment (servers send them as keep-alives)
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
    else if (field === "id" && !value.includes("\0")) this.#id = value;
    // "retry" and unknown fields are ignored, as the spec says.
    return undefined;
  }

  #dispatch(): SseEvent | undefined {
    const data = this.#data;
    const event = this.#event;
    this.#data = [];
    this.#event = "";
    if (data.length === 0) return undefined;
    return { event: event || "message", data: data.join("\n"), ...(this.#id === undefined ? {} : { id: this.#id }) };
  }
}

/** The events of a response body, as they arrive. An unfinished event at the end is dropped (as the spec says). */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const parser = new SseParser();
  const decoder = new TextDecoder("utf-8");
  for await (const bytes of body) {
    yield* parser.push(decoder.decode(bytes, { stream: true }));
  }
  yield* parser.push(decoder.decode());
}
