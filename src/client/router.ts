// What the client knows of the cluster, and where each request goes: the nodes (bootstrap URLs,
// then GET /v1/cluster), which nodes failed lately, and per topic each partition's leader and
// replicas (GET /v1/topics/{t}). Pure state and decisions; the client does the I/O.
//
// A node is reached by the URL the user gave for it when one of the bootstrap URLs answered as
// that node (`x-raftlog-node`), else by the URL the cluster advertises (its --peers URL, which a
// client behind a proxy may not reach: then it fails, is marked down, and any node forwards).

import type { ClusterResponse, TopicDescription } from '../wire/types.js';
import { normalizeBaseUrl } from './http.js';

/** Which replica a fetch goes to: the leader, any replica (spread), or a follower when one is up. */
export type ReadFrom = 'leader' | 'any' | 'follower';

export interface PartitionRoute {
  /** Null when no leader is known. */
  leader: number | null;
  replicas: number[];
}

export interface TopicRoute {
  topic: string;
  partitions: PartitionRoute[];
}

export interface RouterOptions {
  urls: string[];
  /** Send everything to the bootstrap URLs, in order; learn no nodes. */
  direct: boolean;
  /** A topic's leaders are asked again at least this often. */
  metadataMaxAgeMs: number;
  /** A node that failed is skipped this long (unless every node is down). */
  nodeDownMs: number;
}

interface CachedRoute {
  route: TopicRoute;
  fetchedAtMs: number;
  stale: boolean;
}

export class Router {
  readonly bootstrap: readonly string[];
  readonly direct: boolean;
  /** Spreads replica choice across clients, so that many consumers do not all pick one node. */
  readonly salt = Math.floor(Math.random() * 0x7fffffff);
  private readonly options: RouterOptions;
  private readonly urlById = new Map<number, string>();
  /** Node ids that a bootstrap URL answered as: their URL wins over the advertised one. */
  private readonly bootstrapUrlById = new Map<number, string>();
  private readonly downUntilMs = new Map<string, number>();
  private readonly routes = new Map<string, CachedRoute>();
  private lastGood: string;
  private clusterFetchedAtMs = Number.NEGATIVE_INFINITY;

  constructor(options: RouterOptions) {
    if (options.urls.length === 0) throw new TypeError('urls: give at least one node URL');
    this.options = options;
    this.bootstrap = [...new Set(options.urls.map(normalizeBaseUrl))];
    this.direct = options.direct;
    this.lastGood = this.bootstrap[0]!;
  }

  // Nodes.

  /** A node for a request any node serves: the last one that answered, else the first one up. */
  anyNode(nowMs = Date.now()): string {
    if (!this.isDown(this.lastGood, nowMs)) return this.lastGood;
    let best: string | undefined;
    let bestUntilMs = Number.POSITIVE_INFINITY;
    for (const url of this.candidates()) {
      const untilMs = this.downUntilMs.get(url) ?? 0;
      if (untilMs <= nowMs) return url;
      // Every node is down: the one that failed longest ago is the best bet.
      if (untilMs < bestUntilMs) {
        best = url;
        bestUntilMs = untilMs;
      }
    }
    return best ?? this.lastGood;
  }

  /** The URL of node `id` when it is known and not down. */
  nodeUrl(id: number, nowMs = Date.now()): string | undefined {
    if (this.direct) return undefined;
    const url = this.urlById.get(id);
    return url === undefined || this.isDown(url, nowMs) ? undefined : url;
  }

  /** A node answered at `url` (as `nodeId`, when it said). */
  answered(url: string, nodeId: number | undefined): void {
    this.downUntilMs.delete(url);
    this.lastGood = url;
    if (nodeId === undefined) return;
    if (this.bootstrap.includes(url)) this.bootstrapUrlById.set(nodeId, url);
    if (!this.urlById.has(nodeId) || this.bootstrapUrlById.get(nodeId) === url) this.urlById.set(nodeId, url);
  }

  /**
   * `url` answered, but as a node that cannot serve right now (NO_LEADER: cut off from a
   * majority, or between leaders): the next request for any node goes to another one first.
   */
  passOver(url: string): void {
    if (this.lastGood !== url) return;
    const urls = [...this.candidates()];
    if (urls.length < 2) return;
    this.lastGood = urls[(urls.indexOf(url) + 1) % urls.length]!;
  }

  /** `url` could not be reached: skip it for a while, and ask for the cluster again soon. */
  failed(url: string, nowMs = Date.now()): void {
    this.downUntilMs.set(url, nowMs + this.options.nodeDownMs);
    this.clusterFetchedAtMs = Number.NEGATIVE_INFINITY;
  }

  /** Whether GET /v1/cluster is due (never asked, a node failed, or the answer is old). */
  clusterDue(nowMs = Date.now()): boolean {
    return !this.direct && nowMs - this.clusterFetchedAtMs >= this.options.metadataMaxAgeMs;
  }

  /** Records an attempt (answered or not), so that a failing route is not asked in a loop. */
  clusterAsked(nowMs = Date.now()): void {
    this.clusterFetchedAtMs = nowMs;
  }

  learnCluster(cluster: ClusterResponse, nowMs = Date.now()): void {
    this.clusterFetchedAtMs = nowMs;
    this.urlById.clear();
    for (const node of cluster.nodes ?? []) {
      let url: string;
      try {
        url = normalizeBaseUrl(node.url);
      } catch {
        continue; // An advertised URL we cannot use; any node forwards.
      }
      this.urlById.set(node.id, this.bootstrapUrlById.get(node.id) ?? url);
      // `alive` is the answering node's view of its links: a dead peer is not worth a timeout.
      if (node.alive === false && !this.isDown(url, nowMs)) this.failed(url, nowMs);
    }
    this.clusterFetchedAtMs = nowMs;
    for (const [id, url] of this.bootstrapUrlById) if (!this.urlById.has(id)) this.urlById.set(id, url);
  }

  // Topic routes.

  /** The topic's route when known and fresh; undefined when it must be asked for. */
  route(topic: string, nowMs = Date.now()): TopicRoute | undefined {
    const cached = this.routes.get(topic);
    if (!cached || cached.stale || nowMs - cached.fetchedAtMs >= this.options.metadataMaxAgeMs)
      return undefined;
    return cached.route;
  }

  /** The last route known, fresh or not (for a partition count while a refresh fails). */
  lastRoute(topic: string): TopicRoute | undefined {
    return this.routes.get(topic)?.route;
  }

  learnTopic(description: TopicDescription, nowMs = Date.now()): TopicRoute {
    const route: TopicRoute = {
      topic: description.name,
      partitions: description.partitions.map((p) => ({ leader: p.leader, replicas: p.replicas })),
    };
    this.routes.set(description.name, { route, fetchedAtMs: nowMs, stale: false });
    return route;
  }

  /** A leader changed or a node failed: ask for the topic again before the next request. */
  invalidate(topic: string): void {
    const cached = this.routes.get(topic);
    if (cached) cached.stale = true;
  }

  forget(topic: string): void {
    this.routes.delete(topic);
  }

  /**
   * A forwarded answer names the node that served it (`x-raftlog-served-by`): for a produce that
   * is the partition's leader now, which saves asking.
   */
  learnLeader(topic: string, partition: number, servedBy: string): void {
    const leader = Number(servedBy);
    const partitionRoute = this.routes.get(topic)?.route.partitions[partition];
    if (partitionRoute && Number.isInteger(leader)) partitionRoute.leader = leader;
  }

  /** Where a produce to the partition goes: its leader, else any node (which forwards). */
  leaderUrl(route: TopicRoute, partition: number, nowMs = Date.now()): string {
    const leader = route.partitions[partition]?.leader;
    return (leader != null && this.nodeUrl(leader, nowMs)) || this.anyNode(nowMs);
  }

  /**
   * Where a fetch of the partition goes. 'any' spreads partitions over their replicas (the same
   * replica for a partition while it answers: its cache stays warm); `attempt` moves to the next
   * replica after a failure. A replica whose URL is unknown is skipped; with none, any node.
   */
  replicaUrl(route: TopicRoute, partition: number, readFrom: ReadFrom, attempt: number, nowMs = Date.now()) {
    const partitionRoute = route.partitions[partition];
    if (!partitionRoute || readFrom === 'leader') return this.leaderUrl(route, partition, nowMs);
    const up: string[] = [];
    const followers: string[] = [];
    for (const id of partitionRoute.replicas) {
      const url = this.nodeUrl(id, nowMs);
      if (url === undefined) continue;
      up.push(url);
      if (id !== partitionRoute.leader) followers.push(url);
    }
    const choices = readFrom === 'follower' && followers.length > 0 ? followers : up;
    if (choices.length === 0) return this.anyNode(nowMs);
    return choices[(partition + this.salt + attempt - 1) % choices.length]!;
  }

  private isDown(url: string, nowMs: number): boolean {
    return (this.downUntilMs.get(url) ?? 0) > nowMs;
  }

  private *candidates(): Iterable<string> {
    yield* this.bootstrap;
    if (this.direct) return;
    for (const url of this.urlById.values()) if (!this.bootstrap.includes(url)) yield url;
  }
}
