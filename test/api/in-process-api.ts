// Three (or N) fastify apps over an in-process broker cluster. Forwarding between nodes goes
// through fastify's inject instead of sockets, so API behaviour is tested without ports.

import pino from 'pino';
import { buildApp } from '../../src/api/app.js';
import {
  FORWARDED_HEADER,
  type ForwardedResponse,
  type Forwarder,
  type ForwardRequest,
  type StreamedResponse,
  unreachable,
} from '../../src/api/forward.js';
import { eventually, InProcessCluster } from '../broker/in-process-cluster.js';

type ApiApp = ReturnType<typeof buildApp>;

class InjectForwarder implements Forwarder {
  constructor(private readonly api: InProcessApi) {}
  async forward(nodeId: number, request: ForwardRequest): Promise<ForwardedResponse> {
    const app = this.api.apps.get(nodeId);
    if (!app || !this.api.cluster.isUp(nodeId)) return unreachable(nodeId, 'down');
    const response = await app.inject({
      method: request.method,
      url: request.url,
      payload: request.body,
      headers: {
        ...(request.body !== undefined ? { 'content-type': 'application/json' } : {}),
        [FORWARDED_HEADER]: String(request.hops + 1),
      },
    });
    const headers: Record<string, string> = {};
    for (const name of ['content-type', 'retry-after']) {
      const value = response.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    return { statusCode: response.statusCode, headers, body: response.body };
  }
  /** inject() answers only once a response ends, and a record stream does not: no relays here. */
  async openStream(): Promise<StreamedResponse> {
    throw new Error('streams are not relayed between in-process apps');
  }
  async close(): Promise<void> {}
}

export class InProcessApi {
  readonly cluster: InProcessCluster;
  readonly apps = new Map<number, ApiApp>();

  constructor(size: number, nodeOptions?: ConstructorParameters<typeof InProcessCluster>[1]) {
    this.cluster = new InProcessCluster(size, nodeOptions);
  }

  async start(): Promise<void> {
    await this.cluster.startAll();
    for (const [id, broker] of this.cluster.nodes) {
      const app = buildApp({ broker, forwarder: new InjectForwarder(this) }, pino({ level: 'silent' }));
      await app.ready();
      this.apps.set(id, app);
    }
    await eventually(() => [...this.cluster.nodes.values()].every((n) => n.metadataLeader() !== null), 5000);
  }

  /** One JSON request to a node's app (in process): status, parsed body and headers. */
  async json(nodeId: number, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) {
    const response = await this.app(nodeId).inject({ method, url, payload: body as object | undefined });
    return {
      status: response.statusCode,
      body: response.body ? JSON.parse(response.body) : null,
      headers: response.headers,
    };
  }

  app(id: number): ApiApp {
    const app = this.apps.get(id);
    if (!app) throw new Error(`no app for node ${id}`);
    return app;
  }

  async stop(): Promise<void> {
    for (const app of this.apps.values()) await app.close();
    await this.cluster.stopAll();
  }
}
