// What every route plugin is given: the broker (through its facade only), the one way to reach
// other nodes, and the request gate.

import type { Broker } from '../broker/facade.js';
import type { Forwarder } from './forward.js';
import type { RequestGate } from './request-gate.js';

export interface ApiContext {
  broker: Broker;
  forwarder: Forwarder;
  /** Admission and draining (request-gate.ts); absent, neither applies (some tests). */
  gate?: RequestGate;
}
