// The broker's small key-value area in lmdb: producer dedup state, consumer-group offsets, topic
// metadata. Values are bytes (the broker encodes them); put and remove resolve once durable.

import type { StateStore } from './state-store.js';

export class KeyValueArea {
  constructor(private readonly store: StateStore) {}

  get(key: string): Uint8Array | undefined {
    return this.store.kv.get(key);
  }

  /** Stores `value`; resolves once it is flushed to disk. */
  async put(key: string, value: Uint8Array): Promise<void> {
    this.store.kv.put(key, value);
    await this.store.durable();
  }

  async remove(key: string): Promise<void> {
    this.store.kv.remove(key);
    await this.store.durable();
  }

  /** Keys starting with `prefix`, in key order, with their values. */
  *entries(prefix: string): IterableIterator<[string, Uint8Array]> {
    for (const { key, value } of this.store.kv.getRange({ start: prefix })) {
      if (typeof key !== 'string' || !key.startsWith(prefix)) return;
      yield [key, value];
    }
  }
}
