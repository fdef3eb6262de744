// The two load generators of the suite.
//
//   closedLoop: autocannon, N connections, each sending its next request when the last one is
//               answered (commit latency, throughput, scaling). The latency of every 2xx is
//               taken from autocannon's 'response' event (sub-millisecond), not from its own
//               histogram, whose resolution is 1 ms.
//   openLoop:   requests sent on a fixed schedule (request i at start + i / rate) whatever the
//               answers, over a bounded undici pool; each latency runs from the request's
//               scheduled time, so a stall counts against every request it delays (no
//               coordinated omission, as in wrk2). autocannon's own rate limit is not used for
//               this: it sends each connection's per-second budget as a burst at the start of
//               each second, and corrects for omission with a 1 ms expected interval whatever
//               the rate.

import autocannon from 'autocannon';
import { Pool } from 'undici';
import type { Progress } from './progress.js';
import { type Histogram, latencyHistogram, recordMs } from './stats.js';

/** Requests per closed-loop run at most, whatever its duration. */
const CLOSED_LOOP_REQUESTS_MAX = 5_000_000;
/** Requests an open-loop run lets wait at once; past it the rate is beyond what the cluster takes. */
const OPEN_LOOP_OUTSTANDING_MAX = 20_000;
const REQUEST_TIMEOUT_S = 10;
/** How long an open-loop run waits for its last answers after its last send. */
const OPEN_LOOP_DRAIN_MS = 15_000;

export interface LoadTarget {
  /** Origin and path: http://127.0.0.1:9090/v1/topics/t/records */
  url: string;
  connections: number;
  /** Request bodies, cycled by each connection. */
  bodies: string[];
}

export interface LoadResult {
  ok: number;
  errors: number;
  seconds: number;
  latency: Histogram;
}

/** Closed-loop load on every target at once for `seconds`. */
export async function closedLoop(
  targets: LoadTarget[],
  seconds: number,
  progress: { progress: Progress; what: string; unit?: string; perResponse?: number },
): Promise<LoadResult> {
  const latency = latencyHistogram();
  let ok = 0;
  let errors = 0;
  const perResponse = progress.perResponse ?? 1;
  const phase = progress.progress.phase(
    progress.what,
    seconds,
    progress.unit ?? 'req/s',
    () => ok * perResponse,
  );
  const startedMs = performance.now();
  try {
    await Promise.all(
      targets.map(
        (target) =>
          new Promise<void>((resolve, reject) => {
            const path = new URL(target.url).pathname;
            const instance = autocannon(
              {
                url: target.url,
                connections: target.connections,
                pipelining: 1,
                duration: seconds,
                timeout: REQUEST_TIMEOUT_S,
                requests: target.bodies.map((body) => ({
                  method: 'POST',
                  path,
                  headers: { 'content-type': 'application/json' },
                  body,
                })),
              },
              (error, result) => {
                if (error) reject(error);
                else {
                  errors += result.errors + result.timeouts;
                  resolve();
                }
              },
            );
            instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
              if (statusCode >= 200 && statusCode < 300) {
                ok++;
                recordMs(latency, responseTimeMs);
              } else errors++;
              if (ok + errors >= CLOSED_LOOP_REQUESTS_MAX) instance.stop();
            });
          }),
      ),
    );
  } finally {
    phase.done();
  }
  return { ok, errors, seconds: (performance.now() - startedMs) / 1000, latency };
}

export interface ScheduledRequest {
  origin: string;
  path: string;
  body: string;
}

export interface OpenLoopOptions {
  ratePerSecond: number;
  seconds: number;
  connectionsPerOrigin: number;
  /** The i-th request, sent now at `sendEpochMs` (for payloads that carry their send time). */
  request: (index: number, sendEpochMs: number) => ScheduledRequest;
  progress: Progress;
  what: string;
}

export interface OpenLoopResult extends LoadResult {
  /** Requests never sent: the run stopped when OPEN_LOOP_OUTSTANDING_MAX were waiting. */
  notSent: number;
  ratePerSecond: number;
}

/** Sends requests on a fixed schedule; latencies are measured from each scheduled time. */
export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const total = Math.max(1, Math.floor(options.ratePerSecond * options.seconds));
  const intervalMs = 1000 / options.ratePerSecond;
  const pools = new Map<string, Pool>();
  const poolFor = (origin: string) => {
    let pool = pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, { connections: options.connectionsPerOrigin, pipelining: 1 });
      pools.set(origin, pool);
    }
    return pool;
  };
  const latency = latencyHistogram();
  let ok = 0;
  let errors = 0;
  let sent = 0;
  let outstanding = 0;
  let saturated = false;
  const inFlight = new Set<Promise<void>>();
  const phase = options.progress.phase(options.what, options.seconds, 'req/s', () => ok);
  const startMs = performance.now();

  const send = (index: number) => {
    const scheduledMs = startMs + index * intervalMs;
    // Latency counts from the schedule (what a stalled server delays counts against it); a record
    // that carries a time carries this send's, as a producer stamps what it sends.
    const request = options.request(index, performance.timeOrigin + performance.now());
    outstanding++;
    const done = poolFor(request.origin)
      .request({
        method: 'POST',
        path: request.path,
        headers: { 'content-type': 'application/json' },
        body: request.body,
        headersTimeout: REQUEST_TIMEOUT_S * 1000,
        bodyTimeout: REQUEST_TIMEOUT_S * 1000,
      })
      .then(async (response) => {
        await response.body.dump();
        if (response.statusCode >= 200 && response.statusCode < 300) {
          ok++;
          recordMs(latency, performance.now() - scheduledMs);
        } else errors++;
      })
      .catch(() => {
        errors++;
      })
      .finally(() => {
        outstanding--;
        inFlight.delete(done);
      });
    inFlight.add(done);
  };

  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor((performance.now() - startMs) / intervalMs) + 1);
      while (sent < due && !saturated) {
        if (outstanding >= OPEN_LOOP_OUTSTANDING_MAX) saturated = true;
        else send(sent++);
      }
      if (sent >= total || saturated) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  const drained = Promise.all([...inFlight]);
  await Promise.race([drained, new Promise((r) => setTimeout(r, OPEN_LOOP_DRAIN_MS).unref())]);
  phase.done();
  await Promise.all([...pools.values()].map((pool) => pool.destroy()));
  return {
    ok,
    errors,
    notSent: total - sent,
    seconds: (performance.now() - startMs) / 1000,
    latency,
    ratePerSecond: options.ratePerSecond,
  };
}
