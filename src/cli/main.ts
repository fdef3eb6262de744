// Entry point of bin/raftlog (built to dist/cli/main.js): runs the CLI on the process and exits
// with its code once output is flushed.

import { processIo } from './io.js';
import { runCli } from './program.js';

// `raftlog tail ... | head` closes our stdout early: that is the reader being done, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const code = await runCli(process.argv.slice(2), processIo());
// Exit explicitly: a lingering handle (a keep-alive socket, stdin) must not keep a finished command alive.
process.stdout.write('', () => process.exit(code));
