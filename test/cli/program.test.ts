// The command line as a whole, in-process: usage errors exit 2 with one line, runtime errors exit
// 1 with one line, --debug adds the stack, --server / $RAFTLOG_URL choose the node.

import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { connectionRefused, errorReply, FakeNode, topicDescription } from '../client/fake-node.js';
import { TestIo } from './cli-io.js';

const nodes: FakeNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});

function fake(url?: string): FakeNode {
  const node = new FakeNode(url);
  nodes.push(node);
  return node;
}

describe('usage errors exit 2 with one line', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['an unknown command', ['bogus'], /^raftlog: unknown command 'bogus'/],
    ['an unknown option', ['topic', 'list', '--bogus'], /^raftlog: unknown option '--bogus'/],
    ['a missing argument', ['topic', 'create'], /^raftlog: missing required argument 'name'/],
    ['too many arguments', ['topic', 'delete', 'a', 'b'], /^raftlog: too many arguments/],
    ['--partitions 0', ['topic', 'create', 'x', '--partitions', '0'], /--partitions <n>.*integer from 1/],
    ['--replication x', ['topic', 'create', 'x', '--replication', 'x'], /--replication <n>.*integer/],
    ['--persistence bogus', ['topic', 'create', 'x', '--persistence', 'bogus'], /sync, async, memory/],
    ['--partition -1', ['produce', 't', 'v', '--partition', '-1'], /--partition/],
    ['--from yesterday', ['tail', 't', '--from', 'yesterday'], /earliest, latest or an offset/],
    ['--from 1.5', ['tail', 't', '--from', '1.5'], /earliest, latest or an offset/],
    ['--nodes 0', ['dev', '--nodes', '0'], /--nodes <n>.*integer from 1 to 9/],
    ['--base-port 70000', ['dev', '--base-port', '70000'], /--base-port/],
    ['--base-port without room', ['dev', '--base-port', '65535', '--nodes', '3'], /no room for 3 nodes/],
    ['a --server that is not http', ['topic', 'list', '--server', 'ftp://x'], /--server: invalid server URL/],
    [
      'a --server with a path',
      ['cluster', '--server', 'http://127.0.0.1:9090/v1'],
      /only scheme, host and port/,
    ],
    ['no command at all', [], /Usage: raftlog/],
    ['a topic without subcommand', ['topic'], /Usage: raftlog topic/],
  ];
  for (const [what, argv, message] of cases) {
    it(what, async () => {
      const io = new TestIo({ dispatcher: fake().agent });
      expect(await runCli(argv, io)).toBe(2);
      expect(io.err).toMatch(message);
      if (argv.length > 0 && argv[0] !== 'topic') expect(io.errLines).toHaveLength(1);
      expect(io.err).not.toMatch(/\n\s+at /); // no stack trace
      expect(nodes[0]!.requests).toEqual([]); // nothing was sent
    });
  }

  it('says which source of the URL is wrong: $RAFTLOG_URL', async () => {
    const io = new TestIo({ env: { RAFTLOG_URL: 'not a url' } });
    expect(await runCli(['topic', 'list'], io)).toBe(2);
    expect(io.err).toBe(
      "raftlog: $RAFTLOG_URL: invalid server URL 'not a url': expected e.g. http://127.0.0.1:9090\n",
    );
  });
});

describe('help and version exit 0', () => {
  it('--help prints usage on stdout', async () => {
    const io = new TestIo();
    expect(await runCli(['--help'], io)).toBe(0);
    expect(io.out).toContain('Usage: raftlog');
    for (const command of ['start', 'dev', 'topic', 'produce', 'tail', 'cluster'])
      expect(io.out).toContain(command);
  });

  it('a command --help lists its flags and the global --debug', async () => {
    const io = new TestIo();
    expect(await runCli(['tail', '--help'], io)).toBe(0);
    for (const flag of ['--partition', '--offset', '--follow', '--json', '--server', '--debug'])
      expect(io.out).toContain(flag);
  });

  it('--version prints the package version', async () => {
    const io = new TestIo();
    expect(await runCli(['--version'], io)).toBe(0);
    expect(io.out).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('runtime errors exit 1 with one line', () => {
  it('names the error code of the contract', async () => {
    const node = fake().on('GET', /^\/v1\/topics\/orders$/, () =>
      errorReply(404, 'UNKNOWN_TOPIC', "topic 'orders' does not exist"),
    );
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['topic', 'describe', 'orders'], io)).toBe(1);
    expect(io.err).toBe("raftlog: topic 'orders' does not exist (UNKNOWN_TOPIC)\n");
    expect(io.out).toBe('');
  });

  it('explains a node that is not running', async () => {
    const node = fake().on('GET', /^\/v1\/topics$/, () => {
      throw connectionRefused();
    });
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['topic', 'list'], io)).toBe(1);
    expect(io.err).toBe(
      "raftlog: cannot reach http://127.0.0.1:9090 (connection refused) — is a node running? start one with 'raftlog start'\n",
    );
  });

  it('adds the stack and the cause with --debug, wherever the flag is', async () => {
    const node = fake().on('GET', /^\/v1\/topics$/, () => {
      throw connectionRefused();
    });
    for (const argv of [
      ['--debug', 'topic', 'list'],
      ['topic', 'list', '--debug'],
    ]) {
      const io = new TestIo({ dispatcher: node.agent });
      expect(await runCli(argv, io)).toBe(1);
      expect(io.errLines[0]).toMatch(/^raftlog: cannot reach/);
      expect(io.err).toMatch(/RaftlogNetworkError: cannot reach/);
      expect(io.err).toMatch(/\n\s+at /);
      expect(io.err).toContain('caused by: Error: connect ECONNREFUSED');
    }
  });

  it('adds error details with --debug', async () => {
    const node = fake()
      .on('GET', /^\/v1\/topics\/t$/, () => ({ status: 200, body: topicDescription('t', 1) }))
      .on('POST', /records$/, () =>
        errorReply(413, 'RECORD_TOO_LARGE', 'record 0 is over 1048576 bytes', {
          details: { maxRecordBytes: 1048576 },
        }),
      );
    const io = new TestIo({ dispatcher: node.agent });
    expect(await runCli(['produce', 't', 'v', '--debug'], io)).toBe(1);
    expect(io.errLines[0]).toBe('raftlog: record 0 is over 1048576 bytes (RECORD_TOO_LARGE)');
    expect(io.err).toContain('details: {"maxRecordBytes":1048576}');
  });
});

describe('choosing the node', () => {
  it('uses --server, then $RAFTLOG_URL, then http://127.0.0.1:9090', async () => {
    const byFlag = fake('http://127.0.0.1:7001');
    const byEnv = fake('http://127.0.0.1:7002');
    const byDefault = fake('http://127.0.0.1:9090');
    for (const node of [byFlag, byEnv, byDefault]) {
      node.on('GET', /^\/v1\/topics$/, () => ({ status: 200, body: { topics: [] } }));
    }
    // One MockAgent per FakeNode: route the test's dispatcher by origin.
    const dispatcherFor = (io: TestIo, node: FakeNode) => {
      io.dispatcher = node.agent;
      return io;
    };
    const env = { RAFTLOG_URL: 'http://127.0.0.1:7002' };
    expect(
      await runCli(
        ['topic', 'list', '--server', 'http://127.0.0.1:7001'],
        dispatcherFor(new TestIo({ env }), byFlag),
      ),
    ).toBe(0);
    expect(await runCli(['topic', 'list'], dispatcherFor(new TestIo({ env }), byEnv))).toBe(0);
    expect(await runCli(['topic', 'list'], dispatcherFor(new TestIo(), byDefault))).toBe(0);
    expect([byFlag, byEnv, byDefault].map((n) => n.requests.length)).toEqual([1, 1, 1]);
  });
});
