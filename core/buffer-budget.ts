/**
 * The proxy-wide cap on output held for clients that do not read (--max-buffered-bytes), beyond each
 * session's own bound. Pure bookkeeping: the owner reports what each holder has queued after a
 * write, and is told which holders to cut.
 *
 * The recorded sizes can only be stale-high (a socket drains between two reports), so the running
 * total is an upper bound. Only when it passes the cap are the holders recounted exactly (through
 * `pending`); if the exact total is still over, the holders with the most queued are cut, largest
 * first, until the rest fits. The cost is O(1) per report and O(n log n) per recount over the
 * holders being tracked (clients that are behind, not every client).
 */
export interface BudgetVictim<H> {
  holder: H;
  /** What it had queued at the recount. */
  bytes: number;
}

export interface BudgetVerdict<H> {
  /** Holders to cut, largest first; already forgotten by the budget. */
  victims: BudgetVictim<H>[];
  /** The exact total before the cuts. */
  total: number;
}

export class BufferBudget<H> {
  private held = new Map<H, number>();
  private sum = 0;

  constructor(
    readonly cap: number,
    /** What a holder has queued right now (exact). */
    private readonly pending: (h: H) => number,
  ) {}

  /** Bytes counted now (an upper bound of what the tracked holders have queued). */
  get total(): number {
    return this.sum;
  }

  /** Holders tracked now. */
  get size(): number {
    return this.held.size;
  }

  /** `h` has `bytes` queued now (0 = nothing). Returns the holders to cut when the cap is exceeded. */
  note(h: H, bytes: number): BudgetVerdict<H> | undefined {
    const prev = this.held.get(h) ?? 0;
    if (bytes > 0) this.held.set(h, bytes);
    else this.held.delete(h);
    this.sum += bytes - prev;
    return this.sum > this.cap ? this.settle() : undefined;
  }

  /** `h` drained or is gone. */
  forget(h: H): void {
    const prev = this.held.get(h);
    if (prev === undefined) return;
    this.held.delete(h);
    this.sum -= prev;
  }

  private settle(): BudgetVerdict<H> | undefined {
    const entries: [H, number][] = [];
    let sum = 0;
    for (const h of this.held.keys()) {
      const b = this.pending(h);
      if (b > 0) {
        entries.push([h, b]);
        sum += b;
      }
    }
    this.held = new Map(entries);
    this.sum = sum;
    if (sum <= this.cap) return undefined;
    entries.sort((a, b) => b[1] - a[1]);
    const victims: BudgetVictim<H>[] = [];
    for (const [holder, bytes] of entries) {
      if (this.sum <= this.cap) break;
      victims.push({ holder, bytes });
      this.held.delete(holder);
      this.sum -= bytes;
    }
    return { victims, total: sum };
  }
}
