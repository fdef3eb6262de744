// The request gate on a listening node: request bodies in flight are bounded node-wide; a request
// that does not fit waits unread, in arrival order, and is admitted when room comes back, or is
// refused 503 BUSY (contract shape, connection: close) when it waited too long or the queue is
// full; a client that leaves while queued takes nothing with it; a drain refuses the queue.

import net from 'node:net';
import pino from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { RequestGate } from '../../src/api/request-gate.js';
import { eventually, InProcessCluster } from '../broker/in-process-cluster.js';

const cluster = new InProcessCluster(1);
const gate = new RequestGate(
  { bodyBytesInFlightMax: 100, admissionWaitMsMax: 400, queueMax: 2, chunkedBodyBytes: 1000 },
  1,
);
let app: ReturnType<typeof buildApp>;
let url: string;
let port: number;
/** Requests to /test/hold wait until the test opens their gate. */
const holds: Array<() => void> = [];

beforeAll(async () => {
  const broker = await cluster.start(1);
  const forwarder = {
    forward: async () => ({ statusCode: 500, headers: {}, body: '' }),
    openStream: async () => {
      throw new Error('no peers');
    },
    close: async () => {},
  };
  app = buildApp({ broker, forwarder, gate }, pino({ level: 'silent' }));
  app.post('/test/hold', async () => {
    await new Promise<void>((resolve) => holds.push(resolve));
    return { held: true };
  });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
  port = Number(new URL(url).port);
}, 20_000);

afterAll(async () => {
  for (const open of holds) open();
  await app.close();
  await cluster.stopAll();
});

function hold(tag: string) {
  return request(`${url}/test/hold`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tag: tag.padEnd(70, '.') }),
  }).then(async (response) => ({
    status: response.statusCode,
    headers: response.headers,
    body: (await response.body.json()) as { error?: { code: string } },
  }));
}

async function released(): Promise<void> {
  expect(await eventually(() => gate.inFlightBytes === 0 && gate.inFlight === 0, 2000)).toBe(true);
}

describe('request gate: admission', () => {
  it('makes a request that does not fit wait, then admits it when the first is answered', async () => {
    const waitedBefore = gate.waited;
    const first = hold('a');
    expect(await eventually(() => holds.length === 1, 2000)).toBe(true);
    const second = hold('b');
    expect(await eventually(() => gate.waited === waitedBefore + 1, 2000)).toBe(true);
    expect(holds.length).toBe(1); // not admitted: its handler has not run
    holds.shift()!();
    expect((await first).status).toBe(200);
    expect(await eventually(() => holds.length === 1, 2000)).toBe(true);
    holds.shift()!();
    expect((await second).status).toBe(200);
    await released();
  });

  it('refuses a request that waited past admissionWaitMsMax with 503 BUSY in the contract shape', async () => {
    const first = hold('a');
    expect(await eventually(() => holds.length === 1, 2000)).toBe(true);
    const refused = await hold('b');
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'BUSY' } });
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers.connection).toBe('close');
    holds.shift()!();
    expect((await first).status).toBe(200);
    await released();
  });

  it('refuses at once when the queue is full', async () => {
    const first = hold('a');
    expect(await eventually(() => holds.length === 1, 2000)).toBe(true);
    const queued = [hold('b'), hold('c')];
    const startedMs = Date.now();
    const refused = await hold('d');
    expect(refused.status).toBe(503);
    expect(Date.now() - startedMs).toBeLessThan(300);
    holds.shift()!();
    await first;
    await Promise.all(queued.map(async (q) => q.then(() => holds.shift()?.())));
    for (const open of holds.splice(0)) open();
    await Promise.all(queued);
    await released();
  });

  it('a client that leaves while queued takes nothing with it', async () => {
    const first = hold('a');
    expect(await eventually(() => holds.length === 1, 2000)).toBe(true);
    const body = JSON.stringify({ tag: 'x'.repeat(70) });
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /test/hold HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    expect(await eventually(() => gate.waiting === 1, 2000)).toBe(true);
    socket.destroy();
    expect(await eventually(() => gate.waiting === 0, 2000)).toBe(true);
    holds.shift()!();
    expect((await first).status).toBe(200);
    await released();
    // The room it would have taken is there: a new request is admitted at once.
    const next = hold('n');
    expect(await eventually(() => holds.length === 1, 2000)).toBe(true);
    holds.shift()!();
    expect((await next).status).toBe(200);
    await released();
  });

  it('does not count bytes for requests without a body', async () => {
    const first = hold('a');
    expect(await eventually(() => holds.length === 1, 2000)).toBe(true);
    const health = await request(`${url}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    holds.shift()!();
    await first;
    await released();
  });
});

describe('request gate: drain', () => {
  it('refuses what waits and what comes, answers what it admitted, then is idle', async () => {
    const first = hold('a');
    expect(await eventually(() => holds.length === 1, 2000)).toBe(true);
    const queued = hold('b');
    expect(await eventually(() => gate.waiting === 1, 2000)).toBe(true);
    gate.beginDrain();
    const refusedQueued = await queued;
    expect(refusedQueued.status).toBe(503);
    expect(refusedQueued.body).toMatchObject({ error: { code: 'BUSY' } });
    const idle = gate.idle(2000);
    holds.shift()!();
    const answered = await first;
    expect(answered.status).toBe(200);
    expect(answered.headers.connection).toBe('close');
    expect(await idle).toBe(true);
  });
});
