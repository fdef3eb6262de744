// The HTTP edge on a listening single-node API, over raw sockets where a well-behaved client
// cannot say it: every stage of receiving a request is bounded (stalled and trickling bodies,
// stalled headers, idle keep-alive) without cutting long-polls or streams, and every refusal,
// Node's parser's and fastify's included, answers in the contract's shape.

import { readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Client, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { HTTP_LIMITS, type HttpLimits, resolveHttpLimits } from '../../src/api/http-limits.js';
import { MAX_REQUEST_BYTES } from '../../src/wire/types.js';
import { eventually, InProcessCluster } from '../broker/in-process-cluster.js';

/** Short bounds so that each cut comes within a second or two; the defaults are checked below. */
const LIMITS = resolveHttpLimits({
  headersTimeoutMs: 600,
  bodyIdleTimeoutMs: 400,
  requestTimeoutMs: 1_500,
  keepAliveIdleTimeoutMs: 300,
  timeoutCheckIntervalMs: 50,
});
/** How late a cut may come: the check interval, timers and a loaded test machine. */
const SLACK_MS = 700;

const cluster = new InProcessCluster(1);
let app: ReturnType<typeof buildApp>;
let url: string;
let port: number;

beforeAll(async () => {
  const broker = await cluster.start(1);
  const forwarder = {
    forward: async () => ({ statusCode: 500, headers: {}, body: '' }),
    openStream: async () => {
      throw new Error('no peers');
    },
    close: async () => {},
  };
  app = buildApp({ broker, forwarder }, pino({ level: 'silent' }), LIMITS);
  url = await app.listen({ host: '127.0.0.1', port: 0 });
  port = Number(new URL(url).port);
  await eventually(() => broker.metadataLeader() !== null, 5000);
  const created = await call('POST', '/v1/topics', { name: 'edge' });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
}, 20_000);

afterAll(async () => {
  await app.close();
  await cluster.stopAll();
});

async function call(method: 'GET' | 'POST', path: string, body?: unknown) {
  const response = await request(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: text ? JSON.parse(text) : null };
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A raw TCP client: writes what it is told, collects every byte, and notes when the server closes. */
class RawClient {
  received = '';
  closedAtMs: number | null = null;
  readonly openedAtMs = performance.now();
  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.received += chunk;
    });
    socket.on('close', () => {
      this.closedAtMs = performance.now();
    });
    socket.on('error', () => {});
  }

  static connect(): Promise<RawClient> {
    return new Promise((done, fail) => {
      const socket = net.connect(port, '127.0.0.1', () => done(new RawClient(socket)));
      socket.once('error', fail);
    });
  }

  write(data: string): void {
    this.socket.write(data, 'latin1');
  }

  /** The first final (non-1xx) response, once it has fully arrived. */
  async response(timeoutMs = 5000): Promise<RawResponse> {
    let parsed: RawResponse | null = null;
    await eventually(
      () => {
        parsed = parseFinalResponse(this.received);
        return parsed !== null || this.closedAtMs !== null;
      },
      timeoutMs,
      2,
    );
    if (!parsed) parsed = parseFinalResponse(this.received);
    if (!parsed)
      throw new Error(`no complete response within ${timeoutMs} ms: ${JSON.stringify(this.received)}`);
    return parsed;
  }

  async closedByServer(timeoutMs = 5000): Promise<boolean> {
    return eventually(() => this.closedAtMs !== null, timeoutMs, 2);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Parses the first response after any 1xx, when its head and content-length body are all there. */
function parseFinalResponse(text: string): RawResponse | null {
  let rest = text;
  for (;;) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) return null;
    const [statusLine, ...lines] = rest.slice(0, headEnd).split('\r\n');
    const status = Number(statusLine!.split(' ')[1]);
    rest = rest.slice(headEnd + 4);
    if (status < 200) continue;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (rest.length < length) return null;
    return { status, headers, body: rest.slice(0, length) };
  }
}

/** Asserts the contract's error shape, the node header and a closed connection; returns the body. */
async function expectContractError(client: RawClient, status: number, code: string) {
  const response = await client.response();
  expect(response.status, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  expect(response.headers['x-raftlog-node']).toBe('1');
  expect(response.headers.connection).toBe('close');
  const body = JSON.parse(response.body);
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(await client.closedByServer()).toBe(true);
  return body.error as { code: string; message: string };
}

const PRODUCE_HEAD =
  'POST /v1/topics/edge/records HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n';

describe('every stage of receiving a request is bounded', () => {
  it('a stalled body is cut with 408 within bodyIdleTimeoutMs while other clients are served normally', async () => {
    const stalled = await RawClient.connect();
    try {
      stalled.write(`${PRODUCE_HEAD}content-length: 1000\r\n\r\n{"records":`);
      // Other clients, produce and fetch, go on being served while the stalled one waits.
      const served: number[] = [];
      while (parseFinalResponse(stalled.received) === null && stalled.closedAtMs === null) {
        served.push((await call('POST', '/v1/topics/edge/records', { records: [{ value: 'x' }] })).status);
        served.push((await call('GET', '/v1/topics/edge/partitions/0/records?offset=0')).status);
        expect(performance.now() - stalled.openedAtMs).toBeLessThan(LIMITS.bodyIdleTimeoutMs + SLACK_MS);
      }
      expect(served.length).toBeGreaterThan(4);
      expect(served.every((status) => status === 200)).toBe(true);
      const error = await expectContractError(stalled, 408, 'REQUEST_TIMEOUT');
      expect(error.message).toContain('bodyIdleTimeoutMs');
      const cutAfterMs = stalled.closedAtMs! - stalled.openedAtMs;
      expect(cutAfterMs).toBeGreaterThanOrEqual(LIMITS.bodyIdleTimeoutMs - 50);
      expect(cutAfterMs).toBeLessThan(LIMITS.bodyIdleTimeoutMs + SLACK_MS);
    } finally {
      stalled.close();
    }
  });

  it('a chunked body that never ends is cut with 408', async () => {
    const client = await RawClient.connect();
    try {
      client.write(`${PRODUCE_HEAD}transfer-encoding: chunked\r\n\r\nb\r\n{"records":\r\n`);
      await expectContractError(client, 408, 'REQUEST_TIMEOUT');
      expect(client.closedAtMs! - client.openedAtMs).toBeLessThan(LIMITS.bodyIdleTimeoutMs + SLACK_MS);
    } finally {
      client.close();
    }
  });

  it('a body that keeps trickling is cut with 408 at requestTimeoutMs', async () => {
    const client = await RawClient.connect();
    // A byte every 100 ms never trips the idle bound; the total bound still holds.
    const trickle = setInterval(() => client.write(' '), 100);
    try {
      client.write(`${PRODUCE_HEAD}content-length: 1000\r\n\r\n`);
      const error = await expectContractError(client, 408, 'REQUEST_TIMEOUT');
      expect(error.message).toContain('requestTimeoutMs');
      const cutAfterMs = client.closedAtMs! - client.openedAtMs;
      expect(cutAfterMs).toBeGreaterThanOrEqual(LIMITS.requestTimeoutMs - 50);
      expect(cutAfterMs).toBeLessThan(LIMITS.requestTimeoutMs + SLACK_MS);
    } finally {
      clearInterval(trickle);
      client.close();
    }
  });

  it('stalled headers, or none at all, are cut with 408 at headersTimeoutMs', async () => {
    const partial = await RawClient.connect();
    const silent = await RawClient.connect();
    try {
      partial.write('GET /v1/topics HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow');
      await expectContractError(partial, 408, 'REQUEST_TIMEOUT');
      await expectContractError(silent, 408, 'REQUEST_TIMEOUT');
      for (const client of [partial, silent]) {
        expect(client.closedAtMs! - client.openedAtMs).toBeGreaterThanOrEqual(LIMITS.headersTimeoutMs - 50);
        expect(client.closedAtMs! - client.openedAtMs).toBeLessThan(LIMITS.headersTimeoutMs + SLACK_MS);
      }
    } finally {
      partial.close();
      silent.close();
    }
  });

  it('an idle keep-alive connection is closed after keepAliveIdleTimeoutMs (Node adds 1 s)', async () => {
    const client = await RawClient.connect();
    try {
      client.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
      const response = await client.response();
      expect(response.status).toBe(200);
      // Node advertises whole seconds.
      expect(response.headers['keep-alive']).toBe(
        `timeout=${Math.floor(LIMITS.keepAliveIdleTimeoutMs / 1000)}`,
      );
      const answeredAtMs = performance.now();
      expect(await client.closedByServer(LIMITS.keepAliveIdleTimeoutMs + 1000 + SLACK_MS)).toBe(true);
      expect(client.closedAtMs! - answeredAtMs).toBeGreaterThanOrEqual(LIMITS.keepAliveIdleTimeoutMs);
    } finally {
      client.close();
    }
  });

  it('long-polls and streams outlive every bound on receiving a request', async () => {
    const waitMs = LIMITS.requestTimeoutMs + 1000;
    const stream = new Client(url);
    try {
      const startedMs = performance.now();
      const polled = call('GET', `/v1/topics/edge/partitions/0/records?offset=latest&waitMs=${waitMs}`);
      const streamed = await stream.request({
        method: 'GET',
        path: '/v1/topics/edge/partitions/0/stream?offset=latest',
        bodyTimeout: 0,
      });
      expect(streamed.statusCode).toBe(200);
      let text = '';
      streamed.body.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      const poll = await polled;
      expect(poll.status).toBe(200);
      expect(poll.body.records).toEqual([]);
      expect(performance.now() - startedMs).toBeGreaterThanOrEqual(waitMs - 50);
      // The stream, open longer than requestTimeoutMs by now, still carries a new record.
      await call('POST', '/v1/topics/edge/records', { records: [{ value: 'late' }] });
      expect(await eventually(() => text.includes('"late"'), 3000)).toBe(true);
      streamed.body.destroy();
    } finally {
      await stream.destroy();
    }
  });
});

describe('every refusal answers in the contract shape', () => {
  it('a URL over urlBytesMax is 414 URI_TOO_LONG', async () => {
    const client = await RawClient.connect();
    try {
      client.write(`GET /v1/topics/${'x'.repeat(LIMITS.urlBytesMax)} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
      expect((await expectContractError(client, 414, 'URI_TOO_LONG')).message).toContain('urlBytesMax');
    } finally {
      client.close();
    }
  });

  it('a request head over headBytesMax is 431 HEADERS_TOO_LARGE, also when the URL makes it long', async () => {
    const bigHeader = await RawClient.connect();
    const bigUrl = await RawClient.connect();
    try {
      const filler = 'x'.repeat(LIMITS.headBytesMax + 10);
      bigHeader.write(`GET /v1/topics HTTP/1.1\r\nhost: 127.0.0.1\r\nx-filler: ${filler}\r\n\r\n`);
      // Node counts the request line with the headers and says only "header overflow".
      bigUrl.write(`GET /v1/topics/${filler} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
      await expectContractError(bigHeader, 431, 'HEADERS_TOO_LARGE');
      await expectContractError(bigUrl, 431, 'HEADERS_TOO_LARGE');
    } finally {
      bigHeader.close();
      bigUrl.close();
    }
  });

  it('a malformed request line or framing is 400 INVALID_REQUEST', async () => {
    const garbage = await RawClient.connect();
    const framing = await RawClient.connect();
    try {
      garbage.write('GARBAGE\r\n\r\n');
      framing.write(`${PRODUCE_HEAD}content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`);
      expect((await expectContractError(garbage, 400, 'INVALID_REQUEST')).message).toContain('malformed');
      await expectContractError(framing, 400, 'INVALID_REQUEST');
    } finally {
      garbage.close();
      framing.close();
    }
  });

  it('an HTTP/1.1 request without host is 400 INVALID_REQUEST; an unknown expectation is ignored', async () => {
    const hostless = await RawClient.connect();
    const expecting = await RawClient.connect();
    try {
      hostless.write('GET /healthz HTTP/1.1\r\n\r\n');
      expect((await expectContractError(hostless, 400, 'INVALID_REQUEST')).message).toContain('host');
      expecting.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nexpect: something-else\r\n\r\n');
      expect((await expecting.response()).status).toBe(200);
    } finally {
      hostless.close();
      expecting.close();
    }
  });

  it('expect: 100-continue with a 20 MiB body declared is 413 at once, with no 100 Continue', async () => {
    const client = await RawClient.connect();
    try {
      client.write(`${PRODUCE_HEAD}content-length: ${20 * 1024 * 1024}\r\nexpect: 100-continue\r\n\r\n`);
      const error = await expectContractError(client, 413, 'REQUEST_TOO_LARGE');
      expect(error.message).toContain(String(MAX_REQUEST_BYTES));
      expect(client.received).not.toContain('100 Continue');
    } finally {
      client.close();
    }
  });

  it('expect: 100-continue with a small body gets 100 Continue, then its answer', async () => {
    const client = await RawClient.connect();
    try {
      const body = JSON.stringify({ records: [{ value: 'continued' }] });
      client.write(`${PRODUCE_HEAD}content-length: ${body.length}\r\nexpect: 100-continue\r\n\r\n`);
      expect(await eventually(() => client.received.startsWith('HTTP/1.1 100 Continue\r\n'), 2000)).toBe(
        true,
      );
      client.write(body);
      const response = await client.response();
      expect(response.status, response.body).toBe(200);
      expect(JSON.parse(response.body).offsets).toHaveLength(1);
    } finally {
      client.close();
    }
  });

  it('a declared body over maxRequestBytes is 413 before a byte of it is sent', async () => {
    const client = await RawClient.connect();
    try {
      client.write(`${PRODUCE_HEAD}content-length: ${MAX_REQUEST_BYTES + 1}\r\n\r\n`);
      await expectContractError(client, 413, 'REQUEST_TOO_LARGE');
    } finally {
      client.close();
    }
  });

  it('a known path with the wrong method is 405 METHOD_NOT_ALLOWED with allow', async () => {
    const wrong = await call('POST', '/v1/topics/edge/partitions/0/records');
    expect(wrong.status).toBe(405);
    expect(wrong.body.error.code).toBe('METHOD_NOT_ALLOWED');
    expect(wrong.headers.allow).toBe('GET, HEAD');
    expect(wrong.headers['x-raftlog-node']).toBe('1');
    const topics = await request(`${url}/v1/topics`, { method: 'DELETE' });
    expect(topics.statusCode).toBe(405);
    expect(String(topics.headers.allow).split(', ').sort()).toEqual(['GET', 'HEAD', 'POST']);
    expect((await topics.body.json()) as object).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } });
    const missing = await call('GET', '/v1/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
  });

  it('a body that is not JSON by its content-type is 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    for (const type of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded']) {
      const response = await request(`${url}/v1/topics/edge/records`, {
        method: 'POST',
        headers: { 'content-type': type },
        body: '{"records":[{"value":"v"}]}',
      });
      expect(response.statusCode, type).toBe(415);
      expect(response.headers['x-raftlog-node']).toBe('1');
      expect(((await response.body.json()) as { error: { code: string } }).error.code).toBe(
        'UNSUPPORTED_MEDIA_TYPE',
      );
    }
    const untyped = await RawClient.connect();
    try {
      const body = '{"records":[{"value":"v"}]}';
      untyped.write(
        `POST /v1/topics/edge/records HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      );
      const response = await untyped.response();
      expect(response.status).toBe(415);
      expect(JSON.parse(response.body).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    } finally {
      untyped.close();
    }
  });
});

describe('the limits themselves', () => {
  it('defaults are the ones docs/operations.md lists, and buildApp applies them', async () => {
    const operations = readFileSync(
      resolve(dirname(fileURLToPath(import.meta.url)), '../../docs/operations.md'),
      'utf8',
    );
    const start = operations.indexOf('## Limits and timeouts');
    expect(start).toBeGreaterThan(0);
    const end = operations.indexOf('\n## ', start + 1);
    const section = operations.slice(start, end < 0 ? undefined : end);
    const documented: Record<string, number> = {};
    for (const [, name, value] of section.matchAll(/^\| `(\w+)` +\| ([\d_,]+) /gm)) {
      documented[name!] = Number(value!.replaceAll(/[_,]/g, ''));
    }
    expect(documented).toEqual({ ...HTTP_LIMITS });

    const broker = cluster.nodes.get(1)!;
    const forwarder = {
      forward: async () => ({ statusCode: 500, headers: {}, body: '' }),
      openStream: async () => {
        throw new Error('no peers');
      },
      close: async () => {},
    };
    const plain = buildApp({ broker, forwarder }, pino({ level: 'silent' }));
    try {
      expect(plain.server.headersTimeout).toBe(HTTP_LIMITS.headersTimeoutMs);
      expect(plain.server.requestTimeout).toBe(HTTP_LIMITS.requestTimeoutMs);
      expect(plain.server.keepAliveTimeout).toBe(HTTP_LIMITS.keepAliveIdleTimeoutMs);
      // Node keeps the option on the server, untyped.
      expect((plain.server as { maxHeaderSize?: number }).maxHeaderSize).toBe(HTTP_LIMITS.headBytesMax);
      expect(plain.server.timeout).toBe(0);
    } finally {
      await plain.close();
    }
  });

  it('refuses limits Node could not honour', () => {
    const bad: Array<Partial<HttpLimits>> = [
      { headersTimeoutMs: 0 },
      { bodyIdleTimeoutMs: 1.5 },
      { headersTimeoutMs: 2000, requestTimeoutMs: 1000 },
      { urlBytesMax: HTTP_LIMITS.headBytesMax },
    ];
    for (const overrides of bad)
      expect(() => resolveHttpLimits(overrides), JSON.stringify(overrides)).toThrow(RangeError);
  });
});
