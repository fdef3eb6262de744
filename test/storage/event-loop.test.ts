// The event loop never waits on the disk: during a sync-mode write storm over many logs (every
// write fdatasynced in the worker pool), the event-loop delay stays low.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { type PartitionLog, StorageEngine } from '../../src/storage/index.js';
import { removeDir, tempDir, waitFor } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

const LOGS = 16;
const STORM_MS = 2000;
const IN_FLIGHT_PER_LOG = 8;
const PAYLOAD = new Uint8Array(512).fill(7);

describe('event loop during a sync-mode write storm', () => {
  it(`keeps p99 event-loop delay under 20 ms over ${LOGS} logs for ${STORM_MS} ms`, async () => {
    const dir = tempDir('storm');
    dirs.push(dir);
    const engine = await StorageEngine.open({ dataDir: dir, ioThreads: 4, segmentBytesMax: 1024 * 1024 });
    const logs: PartitionLog[] = [];
    const inFlight: number[] = [];
    const next: number[] = [];
    let durableWrites = 0;
    for (let i = 0; i < LOGS; i++) {
      const log = await engine.openLog(`storm-${i}`, {
        mode: 'sync',
        onPersisted: () => {
          inFlight[i]!--;
          durableWrites++;
        },
      });
      logs.push(log);
      inFlight.push(0);
      next.push(1);
    }
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    const stopAt = Date.now() + STORM_MS;
    let persistId = 1;
    let submitted = 0;
    await new Promise<void>((resolve) => {
      const turn = (): void => {
        if (Date.now() >= stopAt) {
          resolve();
          return;
        }
        const writes = [];
        for (let i = 0; i < LOGS; i++) {
          if (inFlight[i]! >= IN_FLIGHT_PER_LOG) continue;
          // One shared payload: the load generator should cost the event loop as little as it can.
          const first = next[i]!;
          const entries = [0, 1, 2, 3].map((k) => ({ index: first + k, term: 1, type: 0, data: PAYLOAD }));
          next[i]! += 4;
          inFlight[i]!++;
          writes.push({
            log: logs[i]!,
            entries,
            hardState: null,
            snapshot: null,
            mustSync: true,
            persistId: persistId++,
          });
        }
        submitted += writes.length;
        if (writes.length > 0) engine.write(writes);
        setImmediate(turn);
      };
      turn();
    });
    histogram.disable();
    await waitFor(() => durableWrites === submitted, 10_000, 'the storm to drain');
    const p99Ms = histogram.percentile(99) / 1e6;
    const maxMs = histogram.max / 1e6;
    console.log(
      `event-loop delay during the storm: p50 ${(histogram.percentile(50) / 1e6).toFixed(2)} ms, p99 ${p99Ms.toFixed(2)} ms, max ${maxMs.toFixed(2)} ms; ${durableWrites} sync writes`,
    );
    expect(durableWrites).toBeGreaterThan(LOGS * 10);
    expect(p99Ms).toBeLessThan(20);
    await engine.close();
  });
});
