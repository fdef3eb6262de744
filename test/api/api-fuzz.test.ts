// Property tests (fast-check) of the whole HTTP API over real sockets, on a 3-node in-process
// cluster: random JSON bodies (schema-shaped and raw, with non-canonical numbers, lone surrogate
// escapes and invalid UTF-8), random path segments and random query strings at every route of
// the route table (read from the app, so a new route is covered without touching this file).
// Every answer is a 2xx/3xx or the contract's error shape with a known code and its status,
// never a 500; and what is accepted reads back exactly as sent.
//
// Bounded in `npm test`; FUZZ_RUNS=<n> runs more (FUZZ_SEED=<seed> replays a failure's seed):
//   FUZZ_RUNS=5000 npx vitest run test/api/api-fuzz.test.ts

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_STATUS } from '../../src/wire/errors.js';
import { type HttpAnswer, ListeningCluster, type RouteEntry } from './listening-cluster.js';

/** Random requests over the route table; the read-back properties run a fifth as many. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const READ_BACK_RUNS = Math.max(25, Math.floor(RUNS / 5));
/** Per-test time: the bounded run takes a few seconds; a long one scales with FUZZ_RUNS. */
const TEST_TIMEOUT_MS = 60_000 + RUNS * 300;

/** The topic random requests aim at (besides random names); never deleted by them. */
const TARGET = 'fz';
/** The topic the read-back properties own; no random request can name it. */
const READ_BACK = 'fz-readback-q7';
const TIMESTAMP_MS_MAX = 253_402_300_799_999;

const api = new ListeningCluster(3);

beforeAll(async () => {
  await api.start();
  for (const name of [TARGET, READ_BACK]) {
    const created = await api.json(1, 'POST', '/v1/topics', { name, partitions: 2 });
    expect(created.status, created.text).toBe(201);
  }
  const seeded = await api.json(1, 'POST', `/v1/topics/${TARGET}/records`, {
    records: [
      { value: 'a', partition: 0 },
      { value: 'b', partition: 0 },
      { value: 'c', partition: 1 },
    ],
  });
  expect(seeded.status, seeded.text).toBe(200);
}, 30_000);

afterAll(async () => {
  await api.stop();
});

function runParameters(numRuns: number): fc.Parameters<unknown> {
  return { numRuns, seed: SEED, verbose: 1 };
}

// ---- the contract's answer ------------------------------------------------------------------

/** A 2xx or 3xx, or the contract's error body with a code of src/wire/errors.ts and its status. */
function expectContractAnswer(answer: HttpAnswer, what: string): void {
  const context = `${what} -> ${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status, context).not.toBe(500);
  if (answer.status >= 200 && answer.status < 400) return;
  expect(answer.body?.error, context).toBeTypeOf('object');
  const { code, message } = answer.body.error;
  expect(typeof code === 'string' && code in ERROR_STATUS, context).toBe(true);
  expect(message, context).toBeTypeOf('string');
  expect(ERROR_STATUS[code as keyof typeof ERROR_STATUS], context).toBe(answer.status);
  expect(String(answer.headers['content-type']), context).toContain('application/json');
}

// ---- random pieces ------------------------------------------------------------------------------

/** Integers written every way but the canonical one, and canonical ones at the edges. */
const NUMBER_TOKENS = [
  '1e20',
  '1E3',
  '1e0',
  '1.0',
  '1.5',
  '0.1',
  '-0',
  '-1',
  '2147483647',
  '2147483648',
  '9007199254740991',
  '9007199254740992',
  '9007199254740993',
  '-9007199254740992',
  '9223372036854775808',
  '1e300',
  '253402300799999',
  '253402300800000',
];
/** Path segments and query values that must not be taken for numbers or names. */
const TRICKY_TEXT = [
  '%20',
  '0x1',
  '1e0',
  '01',
  '+1',
  '%2B1',
  '-0',
  '1.0',
  '-1',
  '2147483648',
  '9007199254740992',
  '9223372036854775808',
  '..',
  '.',
  '%2e%2e',
  '..%2Fx',
  '%',
  '%zz',
  '%ff',
  '%C0%AF',
  '%ED%A0%80',
  'a%00b',
  '%F0%9F%9A%80',
  'earliest',
  'latest',
  'x'.repeat(300),
];
const STRING_TOKENS = [
  '"\\ud800"',
  '"x\\udc00y"',
  '"\\ud83d"',
  '"\\ud83d\\ude80"',
  '"\\\\ud800"',
  '"a\\"b"',
  '"\\u0000"',
  '""',
  '"__proto__"',
];
/** Every property name of the route schemas, so random objects often hit real fields. */
const FIELD_NAMES = [
  'records',
  'value',
  'key',
  'headers',
  'partition',
  'timestamp',
  'encoding',
  'producer',
  'id',
  'epoch',
  'sequence',
  'timeoutMs',
  'name',
  'partitions',
  'replicationFactor',
  'config',
  'persistence',
  'retentionMs',
  'retentionBytes',
  'offsets',
  'topic',
  'offset',
  'node',
  'from',
  'statuses',
];

const numberToken = fc.oneof(fc.integer().map(String), fc.constantFrom(...NUMBER_TOKENS));
const stringToken = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }).map((s) => JSON.stringify(s)),
  fc.constantFrom(...STRING_TOKENS),
  fc.constantFrom(TARGET, 'fz-new-a', '0', 'utf8', 'base64', 'sync', 'memory').map((s) => JSON.stringify(s)),
);
const keyToken = fc.oneof(
  fc.constantFrom(...FIELD_NAMES).map((s) => JSON.stringify(s)),
  stringToken,
);

/** Random JSON text, written token by token so that it can hold what JSON.stringify never writes. */
const rawJson: fc.Arbitrary<string> = fc.letrec<{
  value: string;
  leaf: string;
  array: string;
  object: string;
}>((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, tie('leaf'), tie('array'), tie('object')),
  leaf: fc.oneof(numberToken, stringToken, fc.constantFrom('true', 'false', 'null')),
  array: fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
  object: fc
    .array(fc.tuple(keyToken, tie('value')), { maxLength: 5 })
    .map((entries) => `{${entries.map(([k, v]) => `${k}:${v}`).join(',')}}`),
})).value;

interface Schema {
  type?: string | string[];
  enum?: unknown[];
  pattern?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
}

/**
 * Topics random requests may create and delete (besides random names, which are mostly
 * invalid): a small pool, so creates soon answer TOPIC_EXISTS instead of piling up groups.
 */
const CREATED_TOPICS = ['fz-new-a', 'fz-new-b'];
/** Valid-looking values by the name of the path parameter or body property they go in. */
const LIKELY_BY_NAME: Record<string, readonly string[]> = {
  topic: [TARGET, TARGET, TARGET, ...CREATED_TOPICS],
  name: CREATED_TOPICS,
  partition: ['0', '1'],
  group: ['g1', 'fuzz-group'],
  '*': ['index.html', 'swagger-initializer.js'],
  offset: ['earliest', 'latest', '0', '1'],
};

/** Integers by property name, where the smallest in range would mostly time out or miss. */
const LIKELY_INTEGERS: Record<string, readonly number[]> = {
  timeoutMs: [500, 2000],
  waitMs: [0, 0, 20],
  maxBytes: [1, 1000, 1_048_576],
  limit: [1, 1000],
  partition: [0, 0, 1, 2],
  offset: [0, 1, 2, 3, 10],
};

/** An integer in range but small (large counts and waits would only slow the run down). */
function smallInteger(schema: Schema, name: string): fc.Arbitrary<number> {
  const likely = LIKELY_INTEGERS[name];
  if (likely) return fc.constantFrom(...likely);
  const min = schema.minimum ?? 0;
  return fc.integer({ min, max: Math.min(min + 3, schema.maximum ?? Number.MAX_SAFE_INTEGER) });
}

/** Just outside the schema's range, or a number token written any which way. */
function wrongInteger(schema: Schema): fc.Arbitrary<string> {
  const edges = [(schema.minimum ?? 0) - 1, ...(schema.maximum === undefined ? [] : [schema.maximum + 1])];
  return fc.oneof(fc.constantFrom(...edges).map(String), numberToken);
}

const anyStringText = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }).map((s) => JSON.stringify(s)) },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 9 }).map((b) => JSON.stringify(Buffer.from(b).toString('base64'))),
  },
  { weight: 1, arbitrary: fc.constantFrom(...STRING_TOKENS) },
);

/**
 * JSON text shaped by a route's body schema. `mutate`: now and then a leaf of the wrong type or
 * value, or an extra property; otherwise every value fits the schema (names from LIKELY_BY_NAME).
 */
function textFromSchema(schema: Schema, name: string, mutate: boolean, depth = 0): fc.Arbitrary<string> {
  const right = rightText(schema, name, mutate, depth);
  if (!mutate) return right;
  const wrong = depth > 3 ? fc.constantFrom('null', '0', '""') : rawJson;
  const wrongValue =
    schema.type === 'integer' ? wrongInteger(schema) : fc.oneof(wrong, fc.constantFrom(...STRING_TOKENS));
  return fc.oneof({ weight: 14, arbitrary: right }, { weight: 1, arbitrary: wrongValue });
}

function rightText(schema: Schema, name: string, mutate: boolean, depth: number): fc.Arbitrary<string> {
  if (schema.enum) return fc.constantFrom(...schema.enum).map((v) => JSON.stringify(v));
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return fc.oneof(
    ...types.map((type): fc.Arbitrary<string> => {
      switch (type) {
        case 'object':
          return objectText(schema, mutate, depth);
        case 'array':
          return fc
            .array(textFromSchema(schema.items ?? {}, name, mutate, depth + 1), {
              minLength: Math.min(schema.minItems ?? 0, 2),
              maxLength: Math.min(schema.maxItems ?? 4, 4),
            })
            .map((items) => `[${items.join(',')}]`);
        case 'string': {
          const likely = LIKELY_BY_NAME[name];
          if (!likely) return anyStringText;
          const likelyText = fc.constantFrom(...likely).map((v) => JSON.stringify(v));
          return fc.oneof({ weight: 4, arbitrary: likelyText }, { weight: 1, arbitrary: anyStringText });
        }
        case 'integer':
        case 'number':
          return smallInteger(schema, name).map(String);
        case 'boolean':
          return fc.constantFrom('true', 'false');
        case 'null':
          return fc.constant('null');
        default:
          return rawJson;
      }
    }),
  );
}

function objectText(schema: Schema, mutate: boolean, depth: number): fc.Arbitrary<string> {
  const properties = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  const fields = properties.map(([name, property]) => {
    const field = textFromSchema(property, name, mutate, depth + 1).map(
      (value) => `${JSON.stringify(name)}:${value}`,
    );
    // A required property is left out only when mutating, and rarely.
    if (required.has(name) && !mutate) return field;
    return fc.option(field, { nil: undefined, freq: required.has(name) ? 12 : 2 });
  });
  const open = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
  const extras = open
    ? fc.array(fc.tuple(anyStringText, textFromSchema(open, '', mutate, depth + 1)), { maxLength: 3 })
    : mutate
      ? fc.oneof(
          { weight: 10, arbitrary: fc.constant([]) },
          { weight: 1, arbitrary: fc.array(fc.tuple(keyToken, rawJson), { maxLength: 1 }) },
        )
      : fc.constant([]);
  return fc.tuple(fc.tuple(...fields), extras).map(([present, extra]) => {
    const entries = present.filter((f): f is string => f !== undefined);
    for (const [name, value] of extra) entries.push(`${name}:${value}`);
    return `{${entries.join(',')}}`;
  });
}

/**
 * How far a request strays: `valid` fits every schema (it reaches the handlers, and what they
 * accept is read back), `mutated` has a wrong piece now and then, `chaos` is random throughout.
 */
type Mode = 'valid' | 'mutated' | 'chaos';
const mode = fc.constantFrom<Mode>('valid', 'valid', 'mutated', 'mutated', 'chaos');

function bodyFor(route: RouteEntry, mode: Mode): fc.Arbitrary<string | Uint8Array | undefined> {
  const schema = route.schema.body as Schema | undefined;
  const none = fc.constant(undefined);
  const raw = fc.oneof(rawJson, rawJson, fc.uint8Array({ maxLength: 48 }));
  if (mode === 'chaos') return fc.oneof(raw, none);
  // A body on a route that takes none is rare but allowed.
  if (!schema) return fc.oneof({ weight: 12, arbitrary: none }, { weight: 1, arbitrary: raw });
  if (mode === 'valid') return textFromSchema(schema, '', false);
  return fc.oneof(
    { weight: 12, arbitrary: textFromSchema(schema, '', true) },
    { weight: 1, arbitrary: none },
  );
}

/** A path segment for the parameter `name`: likely valid, tricky, or random. */
function segmentFor(name: string, mode: Mode): fc.Arbitrary<string> {
  const likely = fc.constantFrom(...(LIKELY_BY_NAME[name] ?? ['0', 'x'])).map(encodeURIComponent);
  if (mode === 'valid') return likely;
  return fc.oneof(
    { weight: mode === 'mutated' ? 12 : 2, arbitrary: likely },
    { weight: 2, arbitrary: fc.constantFrom(...TRICKY_TEXT) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.nat().map(String) },
  );
}

/** A query value for a known parameter: one that fits its schema, or not. */
function queryValueFor(name: string, schema: Schema, mode: Mode): fc.Arbitrary<string> {
  let right: fc.Arbitrary<string>;
  if (schema.enum) right = fc.constantFrom(...(schema.enum as string[]));
  else if (schema.type === 'integer') right = smallInteger(schema, name).map(String);
  else right = fc.constantFrom(...(LIKELY_BY_NAME[name] ?? ['x']));
  if (mode === 'valid') return right;
  return fc.oneof(
    { weight: mode === 'mutated' ? 24 : 2, arbitrary: right },
    { weight: 2, arbitrary: fc.constantFrom(...TRICKY_TEXT).map(decodeURIComponentLoosely) },
    { weight: 1, arbitrary: fc.constantFrom(...NUMBER_TOKENS) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  );
}

function queryFor(route: RouteEntry, mode: Mode): fc.Arbitrary<string> {
  const known = Object.entries((route.schema.querystring?.properties ?? {}) as Record<string, Schema>);
  const encode = (pairs: Array<[string, string]>) =>
    pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const fitting = fc
    .tuple(
      ...known.map(([name, schema]) =>
        fc.option(queryValueFor(name, schema, mode), { nil: undefined, freq: 2 }),
      ),
    )
    .map((values) =>
      encode(known.flatMap(([name], i) => (values[i] === undefined ? [] : [[name, values[i]!]]))),
    );
  if (mode === 'valid') return fitting;
  const stray = fc
    .array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom('x', 'offset', '__proto__', 'constructor'),
          fc.string({ unit: 'binary', maxLength: 6 }),
        ),
        fc.string({ unit: 'binary', maxLength: 8 }),
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map(encode);
  return fc.oneof(
    { weight: mode === 'mutated' ? 12 : 1, arbitrary: fitting },
    { weight: 1, arbitrary: stray },
    { weight: 1, arbitrary: fc.constantFrom('', '%', '&&=&', 'offset=%zz', 'limit=1&limit=2', 'a[b]=1') },
  );
}

function decodeURIComponentLoosely(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

interface FuzzRequest {
  node: number;
  route: RouteEntry;
  path: string;
  body: string | Uint8Array | undefined;
}

function requestFor(route: RouteEntry, mode: Mode): fc.Arbitrary<FuzzRequest> {
  const parts = route.url.split('/');
  const holes = parts.filter((p) => p.startsWith(':') || p === '*').map((p) => p.replace(/^:/, ''));
  return fc
    .record({
      node: fc.constantFrom(1, 2, 3),
      values: fc.tuple(...holes.map((hole) => segmentFor(hole, mode))),
      query: queryFor(route, mode),
      body: bodyFor(route, mode),
    })
    .map(({ node, values, query, body }) => {
      let next = 0;
      const path = parts.map((p) => (p.startsWith(':') || p === '*' ? values[next++]! : p)).join('/');
      return { node, route, path: query === '' ? path : `${path}?${query}`, body };
    });
}

/**
 * What the fuzzer leaves alone, each for time, not correctness: deleting the target topic (the
 * read-back checks need it), topics of more than 8 partitions (each is a Raft group per node),
 * and waits over 2 s (long-polls, commit and transfer timeouts).
 */
function isBounded(request: FuzzRequest): boolean {
  const path = decodeURIComponentLoosely(request.path.split('?')[0]!);
  if (request.route.method === 'DELETE' && path === `/v1/topics/${TARGET}`) return false;
  const query = new URLSearchParams(request.path.split('?')[1] ?? '');
  for (const wait of query.getAll('waitMs')) if (Number(wait) > 100) return false;
  if (typeof request.body !== 'string') return true;
  let parsed: unknown;
  try {
    parsed = JSON.parse(request.body);
  } catch {
    return true;
  }
  let bounded = true;
  JSON.stringify(parsed, (key, value) => {
    if (key === 'partitions' && typeof value === 'number' && value > 8) bounded = false;
    if (key === 'timeoutMs' && typeof value === 'number' && value > 2000) bounded = false;
    return value;
  });
  return bounded;
}

// ---- reading back what was accepted ---------------------------------------------------------

interface SentRecord {
  key?: string | null;
  value: string;
  headers?: Record<string, string | null> | null;
  timestamp?: number;
}

/** Fetches each produced record from a random node and compares it field by field. */
async function expectRecordsReadBack(
  topic: string,
  sent: { records: SentRecord[]; encoding?: string },
  offsets: Array<{ partition: number; offset: number }>,
  node: number,
): Promise<void> {
  const encoding = sent.encoding ?? 'utf8';
  for (const [i, record] of sent.records.entries()) {
    const { partition, offset } = offsets[i]!;
    const answer = await api.json(
      node,
      'GET',
      `/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/records` +
        `?offset=${offset}&limit=1&minOffset=${offset}&waitMs=5000&encoding=${encoding}`,
    );
    expect(answer.status, answer.text).toBe(200);
    const got = answer.body.records[0];
    const what = `record ${i} of ${JSON.stringify(sent)} at ${partition}:${offset}`;
    expect(got?.offset, what).toBe(offset);
    expect(got.value, what).toBe(record.value);
    expect(got.key, what).toBe(record.key ?? null);
    // The record format holds a list of headers: an empty one reads back as none (as in Kafka).
    const headers = record.headers && Object.keys(record.headers).length > 0 ? record.headers : null;
    expect(got.headers, what).toEqual(headers);
    if (record.timestamp !== undefined) expect(got.timestamp, what).toBe(record.timestamp);
  }
}

/** After a 2xx, what the route stored must read back as sent (produce, group commit, create). */
async function expectAcceptedReadsBack(request: FuzzRequest, answer: HttpAnswer): Promise<void> {
  if (answer.status < 200 || answer.status >= 300 || typeof request.body !== 'string') return;
  const url = request.route.url;
  const segments = request.path.split('?')[0]!.split('/');
  const sent = JSON.parse(request.body);
  if (request.route.method === 'POST' && url === '/v1/topics/:topic/records') {
    const topic = decodeURIComponent(segments[3]!);
    // Topics the fuzzer created may have a retention of a few ms: only the target is checked. A
    // duplicate (a producer sequence seen before) answers with the first request's records.
    if (topic === TARGET && !answer.body.duplicate)
      await expectRecordsReadBack(topic, sent, answer.body.offsets, 1 + (request.node % 3));
  } else if (request.route.method === 'PUT' && url === '/v1/groups/:group/offsets') {
    const group = decodeURIComponent(segments[3]!);
    const read = await api.json(
      1 + (request.node % 3),
      'GET',
      `/v1/groups/${encodeURIComponent(group)}/offsets`,
    );
    const last = new Map<string, number>();
    for (const o of sent.offsets as Array<{ topic: string; partition: number; offset: number }>)
      last.set(`${o.topic}/${o.partition}`, o.offset);
    for (const [where, offset] of last) {
      const found = read.body.offsets.find(
        (o: { topic: string; partition: number }) => `${o.topic}/${o.partition}` === where,
      );
      expect(found?.offset, `${group} ${where} after ${request.body}`).toBe(offset);
    }
  } else if (request.route.method === 'POST' && url === '/v1/topics') {
    const described = await api.json(
      1 + (request.node % 3),
      'GET',
      `/v1/topics/${encodeURIComponent(sent.name)}`,
    );
    expect(described.body.partitions).toHaveLength(sent.partitions ?? 1);
    expect(described.body.config).toMatchObject(sent.config ?? {});
  }
}

// ---- the properties ---------------------------------------------------------------------------

describe('every route under random input', () => {
  it('reads the route table from the app', () => {
    const table = api.routes.map((r) => `${r.method} ${r.url}`);
    expect(table).toEqual(
      expect.arrayContaining([
        'POST /v1/topics/:topic/records',
        'GET /v1/topics/:topic/partitions/:partition/records',
        'PUT /v1/groups/:group/offsets',
        'POST /v1/topics',
      ]),
    );
  });

  it(
    'answers every request with a 2xx/3xx or a coded error, never a 500; accepted input reads back',
    async () => {
      const requests = fc
        .tuple(fc.constantFrom(...api.routes), mode)
        .chain(([route, how]) => requestFor(route, how));
      await fc.assert(
        fc.asyncProperty(requests, async (request) => {
          fc.pre(isBounded(request));
          const answer = await api.call(request.node, {
            method: request.route.method,
            path: request.path,
            body: request.body,
          });
          const shown =
            typeof request.body === 'string' ? request.body : `${request.body?.length ?? 0} bytes`;
          expectContractAnswer(answer, `${request.route.method} ${request.path} ${shown}`);
          await expectAcceptedReadsBack(request, answer);
        }),
        runParameters(RUNS),
      );
    },
    TEST_TIMEOUT_MS,
  );
});

describe('accepted input reads back exactly', () => {
  const headerName = fc.string({ unit: 'binary', maxLength: 10 }).filter((n) => n !== '__proto__');
  const text = fc.string({ unit: 'binary', maxLength: 40 });
  const utf8Record = fc.record(
    {
      value: text,
      key: fc.option(text, { nil: null }),
      headers: fc.option(fc.dictionary(headerName, fc.option(text, { nil: null }), { maxKeys: 4 }), {
        nil: null,
      }),
      partition: fc.constantFrom(0, 1),
      timestamp: fc.oneof(
        fc.integer({ min: 0, max: TIMESTAMP_MS_MAX }),
        fc.constantFrom(0, TIMESTAMP_MS_MAX),
      ),
    },
    { requiredKeys: ['value'] },
  );
  const base64 = fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes).toString('base64'));
  const base64Record = fc.record(
    {
      value: base64,
      key: fc.option(base64, { nil: null }),
      headers: fc.option(fc.dictionary(headerName, fc.option(text, { nil: null }), { maxKeys: 3 }), {
        nil: null,
      }),
      partition: fc.constantFrom(0, 1),
      timestamp: fc.integer({ min: 0, max: TIMESTAMP_MS_MAX }),
    },
    { requiredKeys: ['value'] },
  );
  const produceBody = fc.oneof(
    fc.record({ records: fc.array(utf8Record, { minLength: 1, maxLength: 5 }) }),
    fc.record({
      records: fc.array(base64Record, { minLength: 1, maxLength: 5 }),
      encoding: fc.constant('base64' as const),
    }),
  );

  it(
    'produces random records through any node and fetches them back byte for byte from any node',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          produceBody,
          fc.constantFrom(1, 2, 3),
          fc.constantFrom(1, 2, 3),
          async (body, to, from) => {
            const answer = await api.json(to, 'POST', `/v1/topics/${READ_BACK}/records`, body);
            expect(answer.status, answer.text).toBe(200);
            await expectRecordsReadBack(READ_BACK, body, answer.body.offsets, from);
          },
        ),
        runParameters(READ_BACK_RUNS),
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'commits random group offsets up to the high watermark and reads them back from any node',
    async () => {
      const bounds = await Promise.all(
        [0, 1].map(async (p) => {
          const answer = await api.json(
            1,
            'GET',
            `/v1/topics/${READ_BACK}/partitions/${p}/records?offset=latest`,
          );
          return answer.body.highWatermark as number;
        }),
      );
      const entry = fc.constantFrom(0, 1).chain((partition) =>
        fc.record({
          topic: fc.constant(READ_BACK),
          partition: fc.constant(partition),
          offset: fc.integer({ min: 0, max: bounds[partition]! }),
        }),
      );
      const group = fc.stringMatching(/^[a-zA-Z0-9._-]{1,12}$/).filter((g) => g !== '.' && g !== '..');
      await fc.assert(
        fc.asyncProperty(
          group,
          fc.array(entry, { minLength: 1, maxLength: 4 }),
          fc.constantFrom(1, 2, 3),
          fc.constantFrom(1, 2, 3),
          async (name, offsets, to, from) => {
            const put = await api.json(to, 'PUT', `/v1/groups/${name}/offsets`, { offsets });
            expect(put.status, put.text).toBe(204);
            const read = await api.json(from, 'GET', `/v1/groups/${name}/offsets?topic=${READ_BACK}`);
            for (const { partition, offset } of offsets.filter(
              (o, i) => offsets.findLastIndex((p) => p.partition === o.partition) === i,
            )) {
              const found = read.body.offsets.find((o: { partition: number }) => o.partition === partition);
              expect(found, read.text).toEqual({ topic: READ_BACK, partition, offset });
            }
            // One past the high watermark is refused, and leaves the committed offset alone.
            const past = await api.json(to, 'PUT', `/v1/groups/${name}/offsets`, {
              offsets: [{ topic: READ_BACK, partition: 0, offset: bounds[0]! + 1_000_000 }],
            });
            expect(past.status, past.text).toBe(416);
          },
        ),
        runParameters(READ_BACK_RUNS),
      );
    },
    TEST_TIMEOUT_MS,
  );
});
