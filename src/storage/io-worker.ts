// The piscina worker: runs one I/O task (steps, read or scan) on node:fs and hands back its
// result, moving read buffers instead of copying them.

import { Piscina } from 'piscina';
import { nodeFileSystem } from './file-system.js';
import { type IoTask, runIoTask } from './io-ops.js';

export default function runTask(task: IoTask): unknown {
  const result = runIoTask(nodeFileSystem, task);
  if (task.kind === 'read' && 'bytes' in result && result.bytes.byteLength > 0) {
    const transferable = {
      get [Piscina.transferableSymbol]() {
        return [result.bytes.buffer];
      },
      get [Piscina.valueSymbol]() {
        return result;
      },
    };
    return Piscina.move(transferable as unknown as Parameters<typeof Piscina.move>[0]);
  }
  return result;
}
