/**
 * What the account layer asks of the cluster (docs/architecture.md §8.7): the account session's
 * resource, the same on every node, and the account's lease before any account session is opened.
 */
import { createHash } from "node:crypto";
import { clusterResource } from "../../core/cluster/lease.js";
import type { AccountLease, AcquireResult, LeaseKeeper } from "./leases.js";

export interface ClusterGate {
  /** The resource every node binds for `bare`'s account session. */
  resource(bare: string): string;
  acquire(bare: string, onLost: (why: string) => void): Promise<AcquireResult>;
  release(bare: string): Promise<void>;
  /** The holder found `lease` invalid before a write: it is lost, without the onLost call. */
  forget(bare: string, lease: AccountLease): void;
}

export function clusterGate(keeper: LeaseKeeper, prefix: string): ClusterGate {
  return {
    resource: (bare) => clusterResource(prefix, createHash("sha256").update(bare.toLowerCase()).digest("hex")),
    acquire: (bare, onLost) => keeper.acquire(bare, onLost),
    release: (bare) => keeper.release(bare),
    forget: (bare, lease) => keeper.forget(bare, lease),
  };
}
