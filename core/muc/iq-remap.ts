/**
 * IQ id rewriting (docs/architecture.md §6.3, RFC 6120 §8.2.3): the account session multiplexes many sessions'
 * IQs to a room, and relays occupants' IQs to one session, so ids are replaced by unique ones and
 * mapped back, making sure a reply reaches only the entity that asked, with its original id.
 */
export type IqDirection =
  | "toRoom" // a session asked room or room/nick through the account session
  | "toSession"; // an occupant asked the account's occupant; relayed to one session

export interface PendingIq {
  id: string; // the id we put on the wire
  direction: IqDirection;
  session: string;
  room: string; // bare room JID
  originalId: string | undefined;
  peer: string; // toRoom: the `to` the session used; toSession: the asking occupant's JID
  at: number;
}

export class IqRemapper {
  private readonly pending = new Map<string, PendingIq>();
  private seq = 0;

  constructor(private readonly prefix: string) {}

  add(entry: Omit<PendingIq, "id">): string {
    this.seq += 1;
    const id = `${this.prefix}-${this.seq.toString(36)}`;
    this.pending.set(id, { ...entry, id });
    return id;
  }

  peek(id: string | undefined): PendingIq | undefined {
    return id === undefined ? undefined : this.pending.get(id);
  }

  take(id: string): PendingIq | undefined {
    const p = this.pending.get(id);
    if (p) this.pending.delete(id);
    return p;
  }

  /** Removes and returns every entry matching `pred`. */
  takeWhere(pred: (p: PendingIq) => boolean): PendingIq[] {
    const out: PendingIq[] = [];
    for (const p of this.pending.values()) if (pred(p)) out.push(p);
    for (const p of out) this.pending.delete(p.id);
    return out;
  }

  get size(): number {
    return this.pending.size;
  }
}
