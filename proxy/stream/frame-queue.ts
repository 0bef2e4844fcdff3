import type { FramingError } from "../../core/xml/errors.js";
import type { StreamHandler } from "./xmpp-connection.js";

export type Frame =
  | { kind: "open"; name: string; attrs: Record<string, string> }
  | { kind: "stanza"; name: string; bytes: Buffer }
  | { kind: "close" };

/**
 * A StreamHandler that turns frames into awaitable values: used while a leg negotiates
 * (STARTTLS, SASL, restart), where the protocol is a strict request/response sequence.
 */
export class FrameQueue implements StreamHandler {
  private frames: Frame[] = [];
  private failure: Error | undefined;
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | undefined;

  onOpen(name: string, attrs: Record<string, string>): void {
    this.push({ kind: "open", name, attrs });
  }
  onStanza(name: string, bytes: Buffer): void {
    this.push({ kind: "stanza", name, bytes });
  }
  onClose(): void {
    this.push({ kind: "close" });
  }
  onFramingError(err: FramingError): void {
    this.fail(err);
  }
  onSocketClosed(err?: Error): void {
    this.fail(err ?? new Error("connection closed"));
  }

  private push(f: Frame): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(f);
    } else this.frames.push(f);
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(err);
    }
  }

  /** The next frame, or a rejection when the socket failed or `timeoutMs` passed. */
  next(timeoutMs: number): Promise<Frame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new TimeoutError());
      }, timeoutMs);
      this.waiter = {
        resolve: (fr) => {
          clearTimeout(timer);
          resolve(fr);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /** Frames received but not consumed yet (handed to the next owner). */
  drain(): Frame[] {
    const f = this.frames;
    this.frames = [];
    return f;
  }
}

export class TimeoutError extends Error {
  constructor() {
    super("timed out");
    this.name = "TimeoutError";
  }
}
