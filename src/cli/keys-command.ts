// The `keys` command: makes a CURVE key pair as two files, <name>.key (secret + public, mode 0600) and <name>.pub
// (public only, 0644), in ZeroMQ's certificate format (pyzmq's zmq.auth.load_certificate reads both).
import { parseArgs } from 'node:util';
import type { CliCommand } from './commands.js';

export const keysCommand: CliCommand = {
  name: 'keys',
  summary: 'make a CURVE key pair: <name>.key (secret, 0600) and <name>.pub (public) for encrypted ZMQ links',
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { dir: { type: 'string', default: '.' }, force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help || positionals.length !== 1) {
      (values.help ? io.out : io.err)('usage: physical-ai-gateway keys <name> [--dir DIR] [--force]');
      (values.help ? io.out : io.err)('  writes DIR/<name>.key (keep it on this host) and DIR/<name>.pub (give it to peers); refuses to replace files without --force');
      return values.help ? 0 : 2;
    }
    const { writeCurveKeyFiles } = await import('../zmq/curve-keys.js');
    const { keyFile, pubFile, publicKey } = await writeCurveKeyFiles(values.dir!, positionals[0]!, { force: values.force! });
    io.out(`secret key: ${keyFile} (mode 0600)`);
    io.out(`public key: ${pubFile}`);
    io.out(`public key (Z85): ${publicKey}`);
    return 0;
  },
};
