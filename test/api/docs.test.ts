// docs/api.md must document every route the API serves and every error code of the contract.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { ERROR_STATUS } from '../../src/wire/errors.js';
import { InProcessCluster } from '../broker/in-process-cluster.js';

const docs = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../docs/api.md'), 'utf8');

/** Every (method, path) the app registers, with :params written as {params}. */
async function routesOf(): Promise<string[]> {
  const cluster = new InProcessCluster(1);
  const broker = await cluster.start(1);
  const app = buildApp(
    {
      broker,
      forwarder: {
        forward: async () => ({ statusCode: 500, headers: {}, body: '' }),
        openStream: async () => {
          throw new Error('no peers');
        },
        close: async () => {},
      },
    },
    pino({ level: 'silent' }),
  );
  const routes: string[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD') continue;
      routes.push(`${method} ${route.url.replace(/:([a-zA-Z]+)/g, '{$1}')}`);
    }
  });
  await app.ready();
  await app.close();
  await cluster.stopAll();
  return routes;
}

describe('docs/api.md', () => {
  it('documents every route', async () => {
    const routes = (await routesOf()).filter((r) => !r.includes('/docs/') && !r.endsWith('/docs'));
    expect(routes.length).toBeGreaterThan(8);
    // Path params may be named differently in the docs ({p} for {partition}): compare shapes.
    const shape = (s: string) => s.replace(/\{[a-zA-Z]+\}/g, '{}');
    const documented =
      docs.match(/`(GET|POST|PUT|DELETE) \/[^`]*`/g)?.map((d) => shape(d.slice(1, -1))) ?? [];
    const missing = routes.filter((r) => !documented.includes(shape(r)));
    expect(missing).toEqual([]);
  });

  it('documents every error code with its status', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      expect(docs, code).toMatch(new RegExp(`\\|\\s*${status}\\s*\\|\\s*\`${code}\``));
    }
  });

  it('documents the docs routes themselves', () => {
    expect(docs).toContain('`GET /docs`');
    expect(docs).toContain('`GET /docs/json`');
  });
});
