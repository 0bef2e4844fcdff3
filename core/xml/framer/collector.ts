import { checkFrameText } from "./utf8.js";
import { frameTooLarge } from "./limits.js";

/**
 * The bytes of the frame being read (stream header or top-level element), gathered across chunks.
 * A frame's bytes are counted against its limit at the end of every chunk, so no more than one
 * chunk past the limit is ever seen and none of it is kept.
 */
export class FrameCollector {
  /** A frame has begun and not yet ended. */
  active = false;
  /** Bytes held from earlier chunks. */
  held = 0;
  private chunks: Buffer[] = [];
  /** Where the frame starts in the current chunk (0 once it began in an earlier one). */
  private start = 0;

  /** The frame begins at byte `i` of the current chunk. */
  begin(i: number): void {
    this.active = true;
    this.chunks = [];
    this.held = 0;
    this.start = i;
  }

  /** A new chunk arrives: a frame in progress continues from its first byte. */
  nextChunk(): void {
    if (this.active) this.start = 0;
  }

  /** Forgets the frame (the XML declaration, or the stream's end). */
  drop(): void {
    this.active = false;
    this.chunks = [];
    this.held = 0;
  }

  /** The chunk ended with the frame unfinished: keep its part, if the frame stays within `max`. */
  keepRest(data: Buffer, max: number, inHeader: boolean): void {
    const rest = data.subarray(this.start);
    this.held += rest.length;
    if (this.held > max) throw frameTooLarge(inHeader, max);
    // copy: the socket may reuse its buffer, and holding a slice would pin the whole chunk
    this.chunks.push(Buffer.from(rest));
  }

  /** The frame ends at byte `i` of `data`: its bytes, checked against `max` and as UTF-8 text. */
  finish(data: Buffer, i: number, max: number, inHeader: boolean): Buffer {
    const tail = data.subarray(this.start, i + 1);
    const total = this.held + tail.length;
    if (total > max) throw frameTooLarge(inHeader, max);
    // A frame that is a whole chunk of its own (one TLS record per stanza is the common case) is
    // returned as is when the chunk owns its memory: nothing else to pin, and sockets never reuse
    // the buffers they emit. Anything else is copied (a slice would pin the whole chunk).
    const bytes = this.chunks.length === 0
      ? (tail.length === data.length && data.byteOffset === 0 && data.buffer.byteLength === data.length ? data : Buffer.from(tail))
      : Buffer.concat([...this.chunks, tail], total);
    this.active = false;
    this.chunks = [];
    this.held = 0;
    this.start = i + 1;
    checkFrameText(bytes);
    return bytes;
  }
}
