// The `keys` command: makes a CURVE key pair as two files, <name>.key (secret + public, mode 0600) and <name>.pub
// (public only, 0644), in ZeroMQ's certificate format (pyzmq's zmq.auth.load_certificate reads both).
import { jsonOption, type DeclaredCommand } from './commands.js';

export const keysCommand: DeclaredCommand = {
  name: 'keys',
  summary: 'make a CURVE key pair: <name>.key (secret, 0600) and <name>.pub (public) for encrypted ZMQ links',
  define(cmd, io) {
    cmd
      .argument('<name>', 'base name of the two files')
      .option('--dir <dir>', 'folder to write them to', '.')
      .option('--force', 'replace existing files', false)
      .addOption(jsonOption())
      .addHelpText('after', '\nWrites DIR/<name>.key (keep it on this host) and DIR/<name>.pub (give it to peers); refuses to replace files without --force.')
      .action(async (name, o) => {
        const { writeCurveKeyFiles } = await import('../zmq/curve-keys.js');
        const { keyFile, pubFile, publicKey } = await writeCurveKeyFiles(o.dir, name, { force: o.force });
        if (o.json) {
          io.out(JSON.stringify({ keyFile, pubFile, publicKey }));
          return;
        }
        io.out(`secret key: ${keyFile} (mode 0600)`);
        io.out(`public key: ${pubFile}`);
        io.out(`public key (Z85): ${publicKey}`);
      });
  },
};
