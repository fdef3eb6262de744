// N fastify apps over an in-process broker cluster, each listening on 127.0.0.1, forwarding to
// each other over real HTTP: what a client sees of a cluster, bytes on the wire included,
// without starting processes.

import pino from 'pino';
import { Pool, request } from 'undici';
import { buildApp } from '../../src/api/app.js';
import {
  FORWARDED_HEADER,
  type ForwardedResponse,
  type Forwarder,
  type ForwardRequest,
  type StreamedResponse,
  type StreamRequest,
  unreachable,
} from '../../src/api/forward.js';
import { NDJSON_CONTENT_TYPE } from '../../src/wire/types.js';
import { eventually, InProcessCluster } from '../broker/in-process-cluster.js';

export type App = ReturnType<typeof buildApp>;

/** A registered route, as the fastify `onRoute` hook saw it. */
export interface RouteEntry {
  method: string;
  /** With `:params`, e.g. /v1/topics/:topic/records. */
  url: string;
  schema: {
    params?: { properties?: Record<string, unknown> };
    querystring?: { properties?: Record<string, unknown> };
    body?: unknown;
  };
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whichever contract shape the route returns
  body: any;
}

export interface HttpCall {
  method: string;
  path: string;
  /** A string or raw bytes, sent as is with content-type: application/json. */
  body?: string | Uint8Array;
  headers?: Record<string, string>;
}

/** Forwards over HTTP to the other apps, found by the URLs they listen on. */
export class UrlForwarder implements Forwarder {
  private readonly pools = new Map<number, Pool>();
  constructor(private readonly urls: Map<number, string>) {}
  async forward(nodeId: number, req: ForwardRequest): Promise<ForwardedResponse> {
    const url = this.urls.get(nodeId);
    if (!url) return unreachable(nodeId, 'no url');
    let pool = this.pools.get(nodeId);
    if (!pool) {
      pool = new Pool(url, { connections: 8 });
      this.pools.set(nodeId, pool);
    }
    try {
      const response = await pool.request({
        method: req.method,
        path: req.url,
        body: req.body,
        headers: {
          ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
          [FORWARDED_HEADER]: String(req.hops + 1),
        },
      });
      const body = await response.body.text();
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'retry-after']) {
        const value = response.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      return { statusCode: response.statusCode, headers, body };
    } catch (error) {
      return unreachable(nodeId, (error as Error).message);
    }
  }
  async openStream(nodeId: number, req: StreamRequest): Promise<StreamedResponse> {
    const url = this.urls.get(nodeId);
    if (!url) throw new Error('no url');
    const response = await request(new URL(req.url, url), {
      headers: { accept: NDJSON_CONTENT_TYPE, [FORWARDED_HEADER]: String(req.hops + 1) },
      bodyTimeout: 0,
    });
    return { statusCode: response.statusCode, body: response.body };
  }
  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
  }
}

export class ListeningCluster {
  readonly cluster: InProcessCluster;
  readonly apps = new Map<number, App>();
  readonly urls = new Map<number, string>();
  /** Every route of the route table (the same on every node), HEAD excluded. */
  readonly routes: RouteEntry[] = [];
  private readonly forwarders: UrlForwarder[] = [];

  constructor(size: number) {
    this.cluster = new InProcessCluster(size);
  }

  async start(): Promise<void> {
    await this.cluster.startAll();
    for (const [id, broker] of this.cluster.nodes) {
      const forwarder = new UrlForwarder(this.urls);
      this.forwarders.push(forwarder);
      const app = buildApp({ broker, forwarder }, pino({ level: 'silent' }));
      if (id === 1) {
        // Plugins load at ready(): a hook added now sees every route they register.
        app.addHook('onRoute', (route) => {
          const methods = Array.isArray(route.method) ? route.method : [route.method];
          for (const method of methods) {
            if (method !== 'HEAD')
              this.routes.push({
                method,
                url: route.url,
                schema: (route.schema ?? {}) as RouteEntry['schema'],
              });
          }
        });
      }
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      this.apps.set(id, app);
      this.urls.set(id, url);
      // Relayed streams dial the URLs in the broker's peer map: point them at the real ports.
      this.cluster.peers.set(id, url);
    }
    await eventually(() => [...this.cluster.nodes.values()].every((n) => n.metadataLeader() !== null), 5000);
  }

  /** One request over a real socket. A 200 stream (NDJSON or SSE) is cut after its headers. */
  async call(nodeId: number, { method, path, body, headers = {} }: HttpCall): Promise<HttpAnswer> {
    const response = await request(`${this.urls.get(nodeId)}${path}`, {
      method: method as 'GET',
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const type = String(response.headers['content-type'] ?? '');
    if (response.statusCode === 200 && /ndjson|event-stream/.test(type)) {
      response.body.destroy();
      return { status: response.statusCode, headers: response.headers, text: '', body: null };
    }
    const text = await response.body.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = undefined; // not JSON: callers check `text`
    }
    return { status: response.statusCode, headers: response.headers, text, body: parsed };
  }

  /** A JSON request (the body is JSON.stringify'd) over a real socket. */
  json(nodeId: number, method: string, path: string, body?: unknown): Promise<HttpAnswer> {
    return this.call(nodeId, { method, path, body: body === undefined ? undefined : JSON.stringify(body) });
  }

  /** The node that leads `topic`/`partition`, and one that does not. */
  async leaderAndFollower(topic: string, partition: number): Promise<{ leader: number; follower: number }> {
    const described = await this.json(1, 'GET', `/v1/topics/${topic}`);
    const leader: number = described.body.partitions[partition].leader;
    const follower = [...this.apps.keys()].find((id) => id !== leader)!;
    return { leader, follower };
  }

  async stop(): Promise<void> {
    for (const app of this.apps.values()) await app.close();
    for (const forwarder of this.forwarders) await forwarder.close();
    await this.cluster.stopAll();
  }
}
