// The replicated state machine every simulated node applies: a hash chain over the applied entries,
// so two nodes that applied the same sequence hold the same small state, and a snapshot of it fits
// in a few bytes and can be checked against every other node's history.

import {
  applyConfChange,
  type ConfState,
  decodeConfChange,
  type Entry,
  EntryType,
  isRaftError,
} from '../../src/raft/index.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** Entries are shared between nodes by reference, so hashing each payload once is enough. */
const hashCache = new WeakMap<Uint8Array, number>();

/** A 32-bit FNV-1a hash of an entry's payload and type. */
export function entryHash(entry: Entry): number {
  let h = hashCache.get(entry.data);
  if (h === undefined) {
    h = FNV_OFFSET;
    const data = entry.data;
    for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i]!, FNV_PRIME);
    h = Math.imul(h ^ data.length, FNV_PRIME) >>> 0;
    hashCache.set(entry.data, h);
  }
  return (h ^ Math.imul(entry.type + 1, 0x27d4eb2d)) >>> 0;
}

/** The chain after applying an entry of `term` with payload hash `hash`. */
export function chainHash(previous: number, term: number, hash: number): number {
  let h = Math.imul(previous ^ hash, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ term, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class StateMachine {
  appliedIndex = 0;
  chain = 0;
  /** Application entries applied (no-ops and conf changes excluded). */
  valueCount = 0;
  /** Membership as of appliedIndex, for the snapshots this node takes. */
  confState: ConfState;

  constructor(confState: ConfState) {
    this.confState = confState;
  }

  /** Applies one committed entry. Returns true if it was a conf change. */
  apply(entry: Entry, hash: number): boolean {
    this.appliedIndex = entry.index;
    this.chain = chainHash(this.chain, entry.term, hash);
    if (entry.type === EntryType.ConfChange) {
      try {
        this.confState = applyConfChange(this.confState, decodeConfChange(entry.data));
      } catch (error) {
        // Committed but invalid: the core treats it as a no-op, and so do we.
        if (!isRaftError(error, 'ConfChangeRejected')) throw error;
      }
      return true;
    }
    if (entry.data.length > 0) this.valueCount++;
    return false;
  }

  /** The snapshot payload: applied index, chain and value count (16 bytes). */
  encode(): Uint8Array {
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    view.setFloat64(0, this.appliedIndex);
    view.setUint32(8, this.chain);
    view.setUint32(12, this.valueCount);
    return bytes;
  }

  static decode(data: Uint8Array, confState: ConfState): StateMachine {
    if (data.length !== 16) throw new Error(`snapshot data of ${data.length} bytes, expected 16`);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const sm = new StateMachine(confState);
    sm.appliedIndex = view.getFloat64(0);
    sm.chain = view.getUint32(8);
    sm.valueCount = view.getUint32(12);
    return sm;
  }
}
