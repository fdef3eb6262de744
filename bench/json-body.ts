// bench:json-body — the cost of the strict JSON body parser (src/api/json-body.ts) against
// fastify's default one, on produce bodies: parse only (no HTTP), so the difference is the
// UTF-8 check, the scan for numbers, surrogate escapes and nesting, and the count of property
// names kept (a repeated one is refused).
//
//   parse:      100 records of 100 bytes (ASCII values, keys, a header, a timestamp); the same
//               with non-ASCII values (Cyrillic and emoji, as UTF-8 and as \u escapes); 1000
//               records of 1 KiB; one 1 MiB record. Each case is timed over a fixed number of
//               bodies after a warm-up, alternating the two parsers in rounds so that neither
//               gets a warmer JIT; the best round counts.
//   end to end: the 100 x 100 B produce through the whole API of a one-node in-process broker
//               (fastify inject, memory stores, no sockets), one request at a time, with the
//               strict parser and with fastify's default one put back, in alternating batches of
//               50 requests; the median batch counts.
//
// Prints JSON, then a table.
//
//   npx tsx bench/json-body.ts [-- --rounds 5]

import { isUtf8 } from 'node:buffer';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import pino from 'pino';
import { buildApp } from '../src/api/app.js';
import { parseJsonBody } from '../src/api/json-body.js';
import { InProcessCluster } from '../test/broker/in-process-cluster.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    'produce-requests': { type: 'string', default: '4000' },
  },
});
const ROUNDS = Number(args.rounds);
const PRODUCE_REQUESTS = Number(args['produce-requests']);
const PRODUCE_BATCH = 50;

interface Case {
  name: string;
  body: Buffer;
  iterations: number;
}

function produceBody(records: number, valueAt: (i: number) => string): Buffer {
  const list = [];
  for (let i = 0; i < records; i++) {
    list.push({
      key: `user-${i}`,
      value: valueAt(i),
      headers: { trace: `t-${i}` },
      timestamp: 1_732_262_400_000 + i,
    });
  }
  return Buffer.from(JSON.stringify({ records: list, timeoutMs: 30_000 }));
}

const ascii = (bytes: number) => (i: number) => `${i}:`.padEnd(bytes, 'x');
const cases: Case[] = [
  { name: '100 x 100 B ascii', body: produceBody(100, ascii(100)), iterations: 20_000 },
  {
    name: '100 x ~100 B utf-8',
    body: produceBody(100, (i) => `${i} привет мир 🚀 ${'ж'.repeat(30)}`),
    iterations: 20_000,
  },
  {
    name: '100 x \\u escapes',
    body: Buffer.from(
      JSON.stringify({ records: Array.from({ length: 100 }, () => ({ value: 'x' })) }).replaceAll(
        '"x"',
        `"${'\\ud83d\\ude80\\u00e9'.repeat(8)}"`,
      ),
    ),
    iterations: 20_000,
  },
  { name: '1000 x 1 KiB ascii', body: produceBody(1000, ascii(1024)), iterations: 500 },
  { name: '1 x 1 MiB ascii', body: produceBody(1, ascii(1024 * 1024)), iterations: 500 },
];

const app = Fastify();
const defaultParser = app.getDefaultJsonParser('error', 'error');

function parseText(text: string): unknown {
  let out: unknown;
  defaultParser({} as never, text, (error, parsed) => {
    if (error) throw error;
    out = parsed;
  });
  return out;
}

/** What fastify's own JSON parser does with a body. */
function parseDefault(body: Buffer): unknown {
  return parseText(body.toString('utf8'));
}

/** What registerStrictJsonParser's parser does with a body. */
function parseStrict(body: Buffer): unknown {
  if (!isUtf8(body)) throw new Error('not UTF-8');
  return parseJsonBody(body.toString('utf8'), parseText);
}

function timeNs(parse: (body: Buffer) => unknown, body: Buffer, iterations: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) parse(body);
  return Number(process.hrtime.bigint() - start) / iterations;
}

const results = cases.map(({ name, body, iterations }) => {
  const warm = Math.max(50, iterations / 10);
  timeNs(parseDefault, body, warm);
  timeNs(parseStrict, body, warm);
  const defaults: number[] = [];
  const stricts: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    defaults.push(timeNs(parseDefault, body, iterations));
    stricts.push(timeNs(parseStrict, body, iterations));
  }
  const best = (xs: number[]) => Math.min(...xs);
  const defaultUs = best(defaults) / 1000;
  const strictUs = best(stricts) / 1000;
  return {
    case: name,
    bodyBytes: body.length,
    defaultParserUs: Number(defaultUs.toFixed(2)),
    strictParserUs: Number(strictUs.toFixed(2)),
    overheadPercent: Number((((strictUs - defaultUs) / defaultUs) * 100).toFixed(1)),
  };
});

/** Mean µs per produce request through the API, strict parser against fastify's default. */
async function endToEnd(): Promise<{ strictUs: number; defaultUs: number; overheadPercent: number }> {
  const cluster = new InProcessCluster(1);
  const broker = await cluster.start(1);
  const forwarder = {
    forward: async () => ({ statusCode: 500, headers: {}, body: '' }),
    openStream: async () => {
      throw new Error('no peers');
    },
    close: async () => {},
  };
  const strict = buildApp({ broker, forwarder }, pino({ level: 'silent' }));
  const loose = buildApp({ broker, forwarder }, pino({ level: 'silent' }));
  loose.removeContentTypeParser('application/json');
  loose.addContentTypeParser(
    'application/json',
    { parseAs: 'string' },
    loose.getDefaultJsonParser('error', 'error'),
  );
  await Promise.all([strict.ready(), loose.ready()]);
  const created = await strict.inject({
    method: 'POST',
    url: '/v1/topics',
    payload: { name: 'bench', config: { persistence: 'memory' } },
  });
  if (created.statusCode !== 201) throw new Error(`create: ${created.body}`);
  const payload = cases[0]!.body.toString('utf8');
  const run = async (app: typeof strict, requests: number) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < requests; i++) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/topics/bench/records',
        headers: { 'content-type': 'application/json' },
        payload,
      });
      if (response.statusCode !== 200) throw new Error(`produce: ${response.body}`);
    }
    return Number(process.hrtime.bigint() - start) / requests / 1000;
  };
  await run(strict, PRODUCE_REQUESTS / 4);
  await run(loose, PRODUCE_REQUESTS / 4);
  // Small alternating batches, then the median batch: the machine's noise hits both alike.
  const stricts: number[] = [];
  const defaults: number[] = [];
  for (let batch = 0; batch < PRODUCE_REQUESTS / PRODUCE_BATCH; batch++) {
    stricts.push(await run(strict, PRODUCE_BATCH));
    defaults.push(await run(loose, PRODUCE_BATCH));
  }
  await Promise.all([strict.close(), loose.close()]);
  await cluster.stopAll();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const strictUs = median(stricts);
  const defaultUs = median(defaults);
  return {
    strictUs: Number(strictUs.toFixed(1)),
    defaultUs: Number(defaultUs.toFixed(1)),
    overheadPercent: Number((((strictUs - defaultUs) / defaultUs) * 100).toFixed(1)),
  };
}

const produce = await endToEnd();
console.log(
  JSON.stringify({ node: process.version, rounds: ROUNDS, parse: results, produce100: produce }, null, 2),
);
console.log('');
console.log('parse only            body bytes   default µs   strict µs   overhead');
for (const r of results) {
  console.log(
    `${r.case.padEnd(20)} ${String(r.bodyBytes).padStart(11)} ${r.defaultParserUs.toFixed(1).padStart(12)} ` +
      `${r.strictParserUs.toFixed(1).padStart(11)} ${`${r.overheadPercent}%`.padStart(10)}`,
  );
}
console.log(
  `produce 100 x 100 B  (whole API) ${produce.defaultUs.toFixed(1).padStart(12)} ` +
    `${produce.strictUs.toFixed(1).padStart(11)} ${`${produce.overheadPercent}%`.padStart(10)}`,
);
await app.close();
