// Admission of request bodies on a listening node: bodies in flight are bounded node-wide; a
// request that does not fit waits unread, in arrival order, and is admitted when room comes back,
// or refused 503 BUSY (contract shape, connection: close) when it waited too long.

import pino from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyAdmission } from '../../src/api/admission.js';
import { buildApp } from '../../src/api/app.js';
import { eventually, InProcessCluster } from '../broker/in-process-cluster.js';

const cluster = new InProcessCluster(1);
let app: ReturnType<typeof buildApp>;
let admission: BodyAdmission;
let url: string;
/** Requests to /test/hold wait until the test opens their gate. */
const gates: Array<() => void> = [];

beforeAll(async () => {
  const broker = await cluster.start(1);
  const forwarder = {
    forward: async () => ({ statusCode: 500, headers: {}, body: '' }),
    close: async () => {},
  };
  app = buildApp({ broker, forwarder }, pino({ level: 'silent' }));
  admission = new BodyAdmission(
    app,
    { bodyBytesInFlightMax: 100, admissionWaitMsMax: 400, chunkedBodyBytes: 1000 },
    1,
  );
  app.post('/test/hold', async () => {
    await new Promise<void>((resolve) => gates.push(resolve));
    return { held: true };
  });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
}, 20_000);

afterAll(async () => {
  for (const open of gates) open();
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
    body: await response.body.json(),
  }));
}

describe('body admission', () => {
  it('makes a request that does not fit wait, then admits it when the first is answered', async () => {
    const first = hold('a');
    expect(await eventually(() => gates.length === 1, 2000)).toBe(true);
    const second = hold('b');
    expect(await eventually(() => admission.waited === 1, 2000)).toBe(true);
    expect(gates.length).toBe(1); // not admitted: its handler has not run
    gates.shift()!();
    expect((await first).status).toBe(200);
    expect(await eventually(() => gates.length === 1, 2000)).toBe(true);
    gates.shift()!();
    expect((await second).status).toBe(200);
    expect(admission.inFlightBytes).toBe(0);
  });

  it('refuses a request that waited past admissionWaitMsMax with 503 BUSY in the contract shape', async () => {
    const first = hold('a');
    expect(await eventually(() => gates.length === 1, 2000)).toBe(true);
    const refused = await hold('b');
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'BUSY' } });
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers.connection).toBe('close');
    gates.shift()!();
    expect((await first).status).toBe(200);
    expect(admission.refused).toBe(1);
    expect(admission.inFlightBytes).toBe(0);
  });

  it('does not count requests without a body', async () => {
    const first = hold('a');
    expect(await eventually(() => gates.length === 1, 2000)).toBe(true);
    const health = await request(`${url}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    gates.shift()!();
    await first;
  });
});
