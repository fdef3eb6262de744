// The public surface of the node-to-node transport. Imports only src/raft types and npm packages.
//
// Contract (kept stable for the broker):
//
//   const transport = new Transport({
//     nodeId, clusterId,
//     peers: Map<NodeId, baseUrl>,          // e.g. 2 → 'http://10.0.0.2:9090'; self is skipped
//     onMessages(fromNodeId, batch) {},     // batch.groupIds[i] is the group of batch.messages[i]
//     onPeerDown(nodeId) {},                // messages were or may be lost: reportUnreachable
//     logger,                               // pino
//     limits: { maxQueuedBytesPerPeer, maxQueuedMessagesPerPeer, maxFrameBytes,
//               pingIntervalMs, peerTimeoutMs, connectTimeoutMs,
//               reconnectBackoffInitialMs, reconnectBackoffMaxMs },   // all optional
//   });
//   transport.attach(app.server);   // accept peer upgrades on the node's own HTTP port
//   transport.start();              // dial every peer
//   // each driver turn:
//   transport.send(toNodeId, groupId, message);   // queue; false when dropped (counted)
//   transport.flush();                            // one frame, one socket.write per peer
//   transport.isPeerAlive(nodeId); transport.stats();
//   await transport.close();       // before app.close(): the server waits for upgraded sockets
//
// Wire: `GET /v1/raft/stream` with `Upgrade: raftlog-frames/1` and x-raftlog-{cluster,node,to}
// headers (handshake.ts), then length-prefixed binary frames (codec.ts). Each node dials each
// peer and sends only on the link it dialed; the link it accepts from that peer carries the
// peer's messages to it. One connection per direction, because then the sending side owns its
// whole path (queue, dial, backoff, writes) with no tie-break between two nodes dialing each
// other at once, a restart on either side is repaired by the dialer alone, and each node reaches
// its peers only through the URLs it was given (a proxy may sit in between). The cost is two
// sockets per pair instead of one.
//
// Limits: a peer's queue holds at most maxQueuedMessagesPerPeer messages and
// maxQueuedBytesPerPeer encoded bytes; it fills only while the link is being dialed or its socket
// drains (a write is skipped while socket.writableNeedDrain; what was held goes out as one frame on
// 'drain'). Beyond that, and at once while the link is down, send() drops and counts; Raft
// resends what matters. onPeerDown fires when a link closes, a dial fails, or a flush saw its
// queue overflow; not on every turn of an outage, which was reported when it began.
//
// Liveness: a link on which nothing arrived for pingIntervalMs sends a 5-byte ping, answered by a
// pong on the same socket; after peerTimeoutMs without any frame the link is closed, reported
// and redialed with capped exponential backoff and jitter.
//
// Decoded messages reference the received bytes: entry data are views, not copies (codec.ts says
// what that retains). onMessages must not throw: an exception there is a bug and is not caught.

export {
  BATCH_FRAME_OVERHEAD_BYTES,
  decodeFrame,
  encodeBatch,
  encodeBatchFrame,
  encodedMessageBytes,
  FRAME_LENGTH_BYTES,
  type Frame,
  FrameKind,
  type MessageBatch,
} from './codec.js';
export { DEFAULT_TRANSPORT_LIMITS, type TransportLimits } from './config.js';
export { isTransportError, TransportError, type TransportErrorCode } from './errors.js';
export { FrameReader, type FrameSink } from './frame-reader.js';
export { STREAM_PATH, STREAM_PROTOCOL } from './handshake.js';
export type { LinkState, PeerStats } from './peer.js';
export { Transport, type TransportOptions, type TransportStats } from './transport.js';
