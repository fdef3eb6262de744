// The server entry of the package (`import { startServer } from 'raftlog/server'`): one raftlog node
// in this process. The package's main entry (src/client/index.ts) is the SDK and loads none of this.

export {
  type LogLevel,
  type RunningServer,
  type ServerOptions,
  startServer,
} from './api/server.js';
