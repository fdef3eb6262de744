// In-process clusters on real storage engines, for the tests that need files: each started by
// start(), stopped and its data directory removed after every test of the file that asks for them.

import { afterEach } from 'vitest';
import { DiskNodeStore } from '../../src/broker/disk-store.js';
import type { StorageEngineOptions } from '../../src/storage/index.js';
import { removeDir, tempDir } from '../storage/helpers.js';
import { InProcessCluster } from './in-process-cluster.js';

type NodeOptions = ConstructorParameters<typeof InProcessCluster>[1];

export interface DiskClusters {
  /** A data directory, removed after the test. */
  dir(): string;
  /** Three nodes, node N storing under <dir>/node-N with one I/O thread and `storeOptions`; started. */
  start(nodeOptions?: NodeOptions, storeOptions?: Partial<StorageEngineOptions>): Promise<InProcessCluster>;
}

/** Call at the top of a file or a describe block: registers the cleanup there. */
export function diskClusters(name: string): DiskClusters {
  let cluster: InProcessCluster | null = null;
  const dirs: string[] = [];
  afterEach(async () => {
    await cluster?.stopAll();
    cluster = null;
    for (const dir of dirs.splice(0)) removeDir(dir);
  });
  const dir = () => {
    const made = tempDir(name);
    dirs.push(made);
    return made;
  };
  return {
    dir,
    async start(nodeOptions = {}, storeOptions = {}) {
      const root = dir();
      const c = new InProcessCluster(3, nodeOptions);
      c.openStore = (id) =>
        DiskNodeStore.open({ dataDir: `${root}/node-${id}`, ioThreads: 1, ...storeOptions });
      cluster = c;
      await c.startAll();
      return c;
    },
  };
}
