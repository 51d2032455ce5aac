// CURVE key pairs and their files: generation, Z85, and a strict reader/writer for ZeroMQ's certificate format
// (ZPL, as czmq's zcert and pyzmq's zmq.auth.create_certificates write it, so pyzmq's load_certificate reads ours).
//
//   <name>.key (mode 0600)          <name>.pub (mode 0644)
//   # comments                      # comments
//   metadata                        metadata
//   curve                           curve
//       public-key = "<40 z85>"         public-key = "<40 z85>"
//       secret-key = "<40 z85>"
//
// Secret keys are never logged; public keys may be (they identify a peer).
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { GatewayError } from '../lib/errors.js';

/** A CURVE key pair as Z85 text (40 characters each). */
export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

/** What a CURVE client needs: the server's public key and its own key pair (Z85). */
export interface CurveClientKeys extends CurveKeyPair {
  serverKey: string;
}

/** What a CURVE server needs: its key pair and, optionally, the clients it accepts (public key → a label, e.g. the file name). */
export interface CurveServerKeys extends CurveKeyPair {
  clientKeys?: ReadonlyMap<string, string>;
}

/** A key file's contents: the public key, and the secret key when the file holds one. */
export interface CurveCertificate {
  publicKey: string;
  secretKey?: string;
}

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_INDEX = new Map([...Z85].map((ch, i) => [ch, i]));
const KEY_RE = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

/** Decodes Z85 text (length a multiple of 5) to bytes; throws on a bad character or length. */
export function z85Decode(text: string): Buffer {
  if (text.length % 5 !== 0) throw new Error(`Z85 text length ${text.length} is not a multiple of 5`);
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const digit = Z85_INDEX.get(text[i + j]!);
      if (digit === undefined) throw new Error(`'${text[i + j]}' is not a Z85 character`);
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) throw new Error('Z85 group out of range');
    out.writeUInt32BE(value, (i / 5) * 4);
  }
  return out;
}

/** Encodes bytes (length a multiple of 4) as Z85 text. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.byteLength % 4 !== 0) throw new Error(`Z85 input length ${bytes.byteLength} is not a multiple of 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out = '';
  for (let i = 0; i < bytes.byteLength; i += 4) {
    let value = view.getUint32(i);
    const group: string[] = [];
    for (let j = 0; j < 5; j++) {
      group.unshift(Z85[value % 85]!);
      value = Math.floor(value / 85);
    }
    out += group.join('');
  }
  return out;
}

/** True for a 40-character Z85 key (32 bytes). */
export function isCurveKey(text: unknown): text is string {
  if (typeof text !== 'string' || !KEY_RE.test(text)) return false;
  try {
    z85Decode(text);
    return true;
  } catch {
    return false;
  }
}

/** The public key that belongs to a secret key (X25519), as Z85. */
export function curvePublicKeyOf(secretKey: string): string {
  const d = z85Decode(secretKey).toString('base64url');
  const jwk = createPublicKey(createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: '' }, format: 'jwk' })).export({ format: 'jwk' });
  return z85Encode(Buffer.from(jwk.x!, 'base64url'));
}

/** A new random key pair (libzmq's zmq_curve_keypair). Throws when this libzmq was built without CURVE. */
export function generateCurveKeyPair(): CurveKeyPair {
  if (!zmq.capability.curve) throw new GatewayError('internal', 'this ZeroMQ build has no CURVE support');
  return zmq.curveKeyPair();
}

/** The file text for a key: public only (`.pub`) or public and secret (`.key`). */
export function formatCertificate(cert: CurveCertificate, name: string): string {
  const lines = cert.secretKey
    ? ['#   ****  CURVE secret key of ' + name + ': keep it private, never copy it to another host  ****']
    : ['#   ****  CURVE public key of ' + name + ': give it to peers that must trust ' + name + '  ****'];
  lines.push('#   ZeroMQ certificate (ZPL), written by physical-ai-gateway keys; pyzmq: zmq.auth.load_certificate', 'metadata', 'curve', `    public-key = "${cert.publicKey}"`);
  if (cert.secretKey) lines.push(`    secret-key = "${cert.secretKey}"`);
  return lines.join('\n') + '\n';
}

/**
 * Parses certificate text strictly: comments and blank lines, a `metadata` section (name = value lines, ignored)
 * and one `curve` section with `public-key` and optionally `secret-key`, each a quoted 40-character Z85 key.
 * A secret key must belong to the public key. Errors name `source` and the line.
 */
export function parseCertificate(text: string, source: string): CurveCertificate {
  const fail = (line: number | undefined, message: string): never => {
    throw new GatewayError('bad_request', `${source}${line === undefined ? '' : `:${line}`}: ${message}`);
  };
  let section: 'metadata' | 'curve' | undefined;
  let sawCurve = false;
  const keys: Partial<Record<'public-key' | 'secret-key', string>> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const n = i + 1;
    const line = raw.replace(/\s+$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    if (!/^\s/.test(line)) {
      if (line !== 'metadata' && line !== 'curve') fail(n, `unexpected section '${line}' (expected 'metadata' or 'curve')`);
      if (line === 'curve' && sawCurve) fail(n, "a second 'curve' section");
      section = line as 'metadata' | 'curve';
      sawCurve ||= section === 'curve';
      return;
    }
    const entry = /^\s+([A-Za-z0-9$_-][A-Za-z0-9$_./-]*)\s*=\s*(.*)$/.exec(line);
    if (!entry) fail(n, 'expected an indented `name = "value"` line');
    const [, name, rawValue] = entry as unknown as [string, string, string];
    if (section === undefined) fail(n, `'${name}' is outside a section`);
    if (section === 'metadata') return;
    if (name !== 'public-key' && name !== 'secret-key') fail(n, `unknown field '${name}' in the curve section (expected public-key, secret-key)`);
    const field = name as 'public-key' | 'secret-key';
    if (keys[field] !== undefined) fail(n, `'${field}' appears twice`);
    const quoted = /^"([^"]*)"$/.exec(rawValue) ?? /^'([^']*)'$/.exec(rawValue);
    const value: string = quoted ? quoted[1]! : rawValue;
    const length = value.length;
    if (!isCurveKey(value)) fail(n, `${field} must be a 40-character Z85 key (${length} characters found)`);
    keys[field] = value;
  });
  if (!sawCurve) fail(undefined, "not a CURVE key file: no 'curve' section");
  const publicKey = keys['public-key'] ?? fail(undefined, 'the curve section has no public-key');
  const secretKey = keys['secret-key'];
  if (secretKey !== undefined && curvePublicKeyOf(secretKey) !== publicKey) fail(undefined, 'secret-key and public-key are not a pair');
  return secretKey === undefined ? { publicKey } : { publicKey, secretKey };
}

function readError(path: string, err: unknown): GatewayError {
  const code = (err as { code?: string }).code;
  const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a folder' : (err as Error).message;
  return new GatewayError('bad_request', `cannot read ${path}: ${reason}`, { cause: err });
}

/** Reads a key file (sync: config is read once at start). With `secret: true` the file must hold a secret key. */
export function readCurveKeyFileSync(path: string, { secret = false } = {}): CurveCertificate {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw readError(path, err);
  }
  const cert = parseCertificate(text, path);
  if (secret && cert.secretKey === undefined) throw new GatewayError('bad_request', `${path}: holds no secret-key (a .pub file? give the .key file)`);
  return cert;
}

/** The public keys of every `*.pub` file in a folder, for an allow list. Throws when there is none or one is bad. */
export function readPublicKeysDirSync(dir: string): Map<string, string> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith('.pub')).sort();
  } catch (err) {
    throw readError(dir, err);
  }
  if (names.length === 0) throw new GatewayError('bad_request', `${dir}: no *.pub key files (an empty allow list would refuse every client)`);
  const keys = new Map<string, string>(); // public key → file name
  for (const name of names) keys.set(readCurveKeyFileSync(join(dir, name)).publicKey, name);
  return keys;
}

/** Reads a key file asynchronously (CLI, tests). */
export async function readCurveKeyFile(path: string, { secret = false } = {}): Promise<CurveCertificate> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw readError(path, err);
  }
  const cert = parseCertificate(text, path);
  if (secret && cert.secretKey === undefined) throw new GatewayError('bad_request', `${path}: holds no secret-key (a .pub file? give the .key file)`);
  return cert;
}

/**
 * Writes `<dir>/<name>.key` (public + secret, mode 0600) and `<dir>/<name>.pub` (public, 0644) for a new key pair.
 * Refuses (`bad_request`) when either file exists, unless `force`. Returns the paths and the public key.
 */
export async function writeCurveKeyFiles(dir: string, name: string, { force = false, keys = generateCurveKeyPair() }: { force?: boolean; keys?: CurveKeyPair } = {}): Promise<{ keyFile: string; pubFile: string; publicKey: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) throw new GatewayError('bad_request', `key name '${name}': letters, digits, '.', '_' and '-' only`);
  const keyFile = join(dir, `${name}.key`);
  const pubFile = join(dir, `${name}.pub`);
  // O_EXCL unless forced: an existing file is never replaced by accident, even in a race.
  const flags = force ? constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC : constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
  const write = async (path: string, text: string, mode: number) => {
    let handle;
    try {
      handle = await open(path, flags, mode);
    } catch (err) {
      if ((err as { code?: string }).code === 'EEXIST') throw new GatewayError('bad_request', `${path} exists; pass --force to replace it`, { cause: err });
      throw new GatewayError('bad_request', `cannot write ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      await handle.chmod(mode); // the umask, or an existing file's mode, does not decide who reads a secret
      await handle.writeFile(text, 'utf8');
    } finally {
      await handle.close();
    }
  };
  if (!force) {
    for (const path of [keyFile, pubFile]) {
      const exists = await open(path, 'r').then(
        async (h) => (await h.close(), true),
        () => false,
      );
      if (exists) throw new GatewayError('bad_request', `${path} exists; pass --force to replace it`);
    }
  }
  await write(keyFile, formatCertificate(keys, name), 0o600);
  await write(pubFile, formatCertificate({ publicKey: keys.publicKey }, name), 0o644);
  return { keyFile, pubFile, publicKey: keys.publicKey };
}
