// SIGTERM of a node while 8 clients produce through it, on three real processes: every request
// sent before the signal gets an HTTP answer (no reset, no timeout), every non-200 has the
// contract's error shape, and the node exits 0 within 3 s. Requests sent after the signal are
// counted too: they may be refused (503 BUSY) or find the port closed.

import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_STATUS } from '../../src/wire/errors.js';
import { ProcessCluster } from './process-cluster.js';

const CLIENTS = 8;
const LOAD_BEFORE_SIGNAL_MS = 2000;
/** Client bound on one answer: a request that takes longer counts as a timeout. */
const ANSWER_TIMEOUT_MS = 10_000;
/** Each client stops after this many requests, whatever happens (bounded loop). */
const REQUESTS_PER_CLIENT_MAX = 20_000;

interface Outcome {
  sentMs: number;
  status: number;
  code: string | null;
  /** The body was the contract's error shape (non-200 only). */
  contractShape: boolean;
  networkError: string | null;
}

let cluster: ProcessCluster;

beforeAll(async () => {
  cluster = await ProcessCluster.create(3);
  cluster.startAll();
  await cluster.waitReady();
  const created = await cluster.request(1, 'POST', '/v1/topics', { name: 'drain', partitions: 3 });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

/** A request of `records` records of `recordBytes` bytes each (the same body every time). */
function bodyOf(records: number, recordBytes: number): string {
  const value = 'v'.repeat(recordBytes);
  return JSON.stringify({ records: Array.from({ length: records }, () => ({ value })) });
}

async function produceLoop(
  url: string,
  body: string,
  stop: () => boolean,
  outcomes: Outcome[],
): Promise<void> {
  const connection = new Client(url, { headersTimeout: ANSWER_TIMEOUT_MS, bodyTimeout: ANSWER_TIMEOUT_MS });
  try {
    for (let i = 0; i < REQUESTS_PER_CLIENT_MAX && !stop(); i++) {
      const outcome: Outcome = {
        sentMs: Date.now(),
        status: 0,
        code: null,
        contractShape: false,
        networkError: null,
      };
      outcomes.push(outcome);
      try {
        const response = await connection.request({
          method: 'POST',
          path: '/v1/topics/drain/records',
          headers: { 'content-type': 'application/json' },
          body,
        });
        const text = await response.body.text();
        outcome.status = response.statusCode;
        if (response.statusCode !== 200) {
          const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
          outcome.code = typeof body.error?.code === 'string' ? body.error.code : null;
          outcome.contractShape =
            outcome.code !== null && outcome.code in ERROR_STATUS && typeof body.error?.message === 'string';
        }
      } catch (error) {
        outcome.networkError = (error as { code?: string }).code ?? (error as Error).message;
        return; // the node is gone for this client
      }
    }
  } finally {
    await connection.destroy().catch(() => undefined);
  }
}

function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = o.networkError
      ? `network ${o.networkError}`
      : o.status === 200
        ? '200'
        : `${o.status} ${o.code}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe('SIGTERM under load', () => {
  // Small requests keep many in flight; 10 MB ones (ten 1 MB records) fill the node's bound on
  // request bodies, so some wait in its admission queue when the signal comes.
  it.each([
    ['one-record', 1, 100],
    ['10 MB', 10, 1_000_000],
  ])(
    '%s requests: answers every request sent before the signal, in the contract shape, and exits 0 within 3 s',
    async (kind, records, recordBytes) => {
      const target = cluster.node(1);
      const outcomes: Outcome[] = [];
      let exited = false;
      const body = bodyOf(records, recordBytes);
      const loops = Array.from({ length: CLIENTS }, () =>
        produceLoop(target.url, body, () => exited, outcomes),
      );
      await new Promise((resolve) => setTimeout(resolve, LOAD_BEFORE_SIGNAL_MS));
      const signalledMs = Date.now();
      const code = await cluster.kill(1, 'SIGTERM', 10_000);
      const exitMs = Date.now() - signalledMs;
      exited = true;
      await Promise.all(loops);

      const before = outcomes.filter((o) => o.sentMs < signalledMs);
      const after = outcomes.filter((o) => o.sentMs >= signalledMs);
      const stoppedLine = target.output
        .join('')
        .split('\n')
        .find((line) => line.includes('"node stopped"'));
      const shutdownMs = stoppedLine ? (JSON.parse(stoppedLine) as { shutdownMs?: number }).shutdownMs : null;
      const summary =
        `exit ${code} after ${exitMs} ms (the node's own shutdown: ${shutdownMs} ms); ` +
        `sent before the signal: ${JSON.stringify(tally(before))}; after: ${JSON.stringify(tally(after))}`;
      console.log(`SIGTERM under load (${CLIENTS} clients, ${kind} requests): ${summary}`);
      expect(code, summary).toBe(0);
      expect(exitMs, summary).toBeLessThan(3000);
      expect(before.filter((o) => o.status === 200).length, summary).toBeGreaterThan(records === 1 ? 100 : 4);
      expect(
        before.filter((o) => o.networkError !== null),
        summary,
      ).toEqual([]);
      expect(
        before.filter((o) => o.status !== 200 && !o.contractShape),
        summary,
      ).toEqual([]);
      expect(
        after.filter((o) => o.status !== 0 && o.status !== 200 && !o.contractShape),
        summary,
      ).toEqual([]);
      cluster.start(1);
      await cluster.waitReady();
    },
    60_000,
  );
});
