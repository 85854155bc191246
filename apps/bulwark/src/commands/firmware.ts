import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  type FirmwareManifest,
  type FirmwarePublicKey,
  FirmwareDigest,
  type ReleaseKeyDelegationBody,
  type RootKeySet,
  type RootRotationBody,
  type Signed,
  addDelegationSignature,
  addSignature,
  checkImage,
  delegateReleaseKeys,
  generateFirmwareKey,
  isSemver,
  rootAfter,
  rootKeySet,
  rotateRoot,
  signRelease,
  verifyFirmware,
  walkRootChain,
} from '@bulwark/protocol/firmware';
import { type Command, InvalidArgumentError } from 'commander';
import { collect, commaList, positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, EXIT, Exit, usageError } from '../errors.js';
import { writeKeyFile, writePublicFile } from '../files.js';
import { printJson, printTable, time } from '../output.js';

/** A firmware artifact as the API lists it. */
interface Artifact {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly securityVersion: number;
  readonly model: string;
  readonly hardwareRevisions: string[];
  readonly size: number;
  readonly sha256: string;
  readonly expiresAt: number;
  readonly state: string;
  readonly createdAt: number;
}

const DAY_MS = 86_400_000;

function readJson<T>(path: string, what: string): T {
  try {
    return JSON.parse(readFileSync(resolve(path), 'utf8')) as T;
  } catch (err) {
    throw new CliError('BULWARK_CLI_FILE', `cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(resolve(path));
  } catch (err) {
    throw new CliError('BULWARK_CLI_FILE', `cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

const readPublicKey = (path: string) => {
  const k = readJson<FirmwarePublicKey>(path, 'public key');
  if (typeof k.keyId !== 'string' || typeof k.publicKey !== 'string') throw usageError(`${path} is not a public key file from "bulwark firmware keygen"`);
  return { keyId: k.keyId, publicKey: k.publicKey };
};

const nonNegative = (value: string) => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a whole number, 0 or more');
  return Number(value);
};
const semver = (value: string) => {
  if (!isSemver(value)) throw new InvalidArgumentError('must be a semantic version such as 2.1.0');
  return value;
};

function writeJson(path: string, value: unknown): void {
  writePublicFile(resolve(path), JSON.stringify(value, null, 2));
}

/** `bulwark firmware keygen | root | rotate-root | delegate | sign | verify | upload | list`. */
export function addFirmwareCommands(program: Command, env: Env): void {
  const fw = program.command('firmware').description('signed firmware: key ceremony, signing, verification and upload (see docs/guides/firmware-updates.md)');

  fw.command('keygen')
    .description('make an Ed25519 signing key: FILE (private, 0600; keep root keys offline) and FILE.pub.json (public)')
    .requiredOption('--out <file>', 'where the private key goes')
    .option('--json', 'print the key id and files as JSON')
    .action((opts: { out: string; json?: boolean }) => {
      const key = generateFirmwareKey();
      const out = resolve(opts.out);
      writeKeyFile(out, key.privateKeyPem);
      writeJson(`${out}.pub.json`, { keyId: key.keyId, publicKey: key.publicKey });
      if (opts.json) return printJson({ keyId: key.keyId, publicKey: key.publicKey, privateKeyFile: out, publicKeyFile: `${out}.pub.json` });
      console.log(`Key ${key.keyId}\n  private  ${out} (0600)\n  public   ${out}.pub.json`);
    });

  fw.command('root')
    .description('the root key set devices and the platform pin: the public root keys and how many must sign a delegation')
    .requiredOption('--key <pub.json>', 'a root public key (repeat for each)', collect)
    .requiredOption('--threshold <n>', 'signatures needed (e.g. 2 of 3)', positiveInt(16))
    .requiredOption('--out <file>', 'where the root key set goes (ota.rootKeysFile on the platform)')
    .action((opts: { key: string[]; threshold: number; out: string }) => {
      let root: RootKeySet;
      try {
        root = rootKeySet(opts.threshold, opts.key.map(readPublicKey));
      } catch (err) {
        throw usageError((err as Error).message);
      }
      writeJson(opts.out, root);
      console.log(`Root key set: ${root.threshold} of ${root.keys.length} keys → ${resolve(opts.out)}`);
    });

  fw.command('rotate-root')
    .description('replace the root key set: holders of the current root keys and of the new ones sign a rotation (run once per holder with --in, or with several --sign-key at once)')
    .requiredOption('--root <file>', 'the root key set trusted now (version N)')
    .option('--key <pub.json>', 'a new root public key (repeat for each; for a new rotation)', collect)
    .option('--threshold <n>', 'signatures the new root needs (for a new rotation)', positiveInt(16))
    .option('--sign-key <file>', 'a private key, current or new, to sign the rotation with (repeatable)', collect)
    .option('--in <file>', 'add signatures to this rotation instead of making a new one')
    .requiredOption('--out <file>', 'where the rotation goes (pass it to "firmware sign --root-rotation")')
    .option('--root-out <file>', "where the new root key set goes once the rotation is complete (version N+1: the platform's ota.rootKeysFile)")
    .action((opts: { root: string; key?: string[]; threshold?: number; signKey?: string[]; in?: string; out: string; rootOut?: string }) => {
      const current = readJson<RootKeySet>(opts.root, 'root key set');
      const pems = (opts.signKey ?? []).map((f) => readFile(f, 'signing key').toString('utf8'));
      let rotation: Signed<RootRotationBody>;
      if (opts.in !== undefined) {
        rotation = pems.reduce(addSignature, readJson<Signed<RootRotationBody>>(opts.in, 'rotation'));
      } else {
        if (!opts.key?.length || opts.threshold === undefined) throw usageError('a new rotation needs --key (each new root public key) and --threshold');
        try {
          rotation = rotateRoot(current, { threshold: opts.threshold, keys: opts.key.map(readPublicKey) }, pems);
        } catch (err) {
          throw usageError((err as Error).message);
        }
      }
      writeJson(opts.out, rotation);
      const walk = walkRootChain(current, [rotation]);
      console.log(`Root rotation to version ${rotation.signed.version} (${rotation.signed.threshold} of ${rotation.signed.keys.length} keys), ${rotation.signatures.length} signature(s) → ${resolve(opts.out)}`);
      if (!walk.ok) return console.log(`  not complete yet: ${walk.detail}`);
      console.log('  complete: verifiers trusting the current root accept it');
      if (opts.rootOut !== undefined) {
        writeJson(opts.rootOut, rootAfter(rotation));
        console.log(`  new root key set → ${resolve(opts.rootOut)}`);
      }
    });

  fw.command('delegate')
    .description('root key holders sign the release keys (run once per holder with --in, or with several --root-key at once)')
    .option('--root-key <file>', 'a root private key to sign with (repeatable)', collect)
    .option('--release-key <pub.json>', 'a release public key to delegate to (repeatable; for a new delegation)', collect)
    .option('--in <file>', 'add signatures to this delegation instead of making a new one')
    .option('--expires-days <n>', 'lifetime of a new delegation (default 365)', positiveInt(3650))
    .option('--counter <n>', 'delegation version, raised on every key rotation (default 1)', positiveInt(1_000_000))
    .requiredOption('--out <file>', 'where the delegation goes')
    .action((opts: { rootKey?: string[]; releaseKey?: string[]; in?: string; expiresDays?: number; counter?: number; out: string }) => {
      const roots = (opts.rootKey ?? []).map((f) => readFile(f, 'root key').toString('utf8'));
      if (roots.length === 0) throw usageError('give at least one --root-key');
      let d: Signed<ReleaseKeyDelegationBody>;
      if (opts.in !== undefined) {
        d = readJson(opts.in, 'delegation');
        for (const pem of roots) d = addDelegationSignature(d, pem);
      } else {
        if (!opts.releaseKey?.length) throw usageError('a new delegation needs --release-key');
        d = delegateReleaseKeys({ version: opts.counter ?? 1, expires: Date.now() + (opts.expiresDays ?? 365) * DAY_MS, keys: opts.releaseKey.map(readPublicKey) }, roots);
      }
      writeJson(opts.out, d);
      console.log(`Delegation v${d.signed.version} of ${d.signed.keys.length} release key(s), ${d.signatures.length} root signature(s), expires ${time(d.signed.expires)} → ${resolve(opts.out)}`);
    });

  fw.command('sign')
    .description('sign a release: writes the manifest (delegation + signed metadata) that travels with the image')
    .argument('<image>', 'the firmware image')
    .requiredOption('--key <file>', 'the release private key')
    .requiredOption('--delegation <file>', 'the delegation of that key (from "firmware delegate")')
    .requiredOption('--name <name>', 'release name, e.g. gw-fw')
    .requiredOption('--release-version <semver>', 'release version (semver)', semver)
    .requiredOption('--security-version <n>', 'monotonic security version', nonNegative)
    .requiredOption('--model <model>', 'hardware model the image is built for')
    .requiredOption('--hw-rev <list>', 'hardware revisions it runs on, comma-separated', commaList)
    .option('--expires-days <n>', 'metadata lifetime (default 90): devices refuse it afterwards', positiveInt(3650))
    .option('--root-rotation <file>', 'a root rotation to carry, oldest first (repeatable): for devices still pinned to an older root', collect)
    .requiredOption('--out <file>', 'where the manifest goes')
    .option('--json', 'print the signed metadata as JSON')
    .action((image: string, opts: { key: string; delegation: string; name: string; releaseVersion: string; securityVersion: number; model: string; hwRev: string[]; expiresDays?: number; rootRotation?: string[]; out: string; json?: boolean }) => {
      const bytes = readFile(image, 'image');
      const now = Date.now();
      const manifest = signRelease(
        {
          name: opts.name,
          version: opts.releaseVersion,
          securityVersion: opts.securityVersion,
          hardware: { model: opts.model, hardwareRevisions: opts.hwRev },
          size: bytes.length,
          sha256: createHash('sha256').update(bytes).digest('hex'),
          issuedAt: now,
          expires: now + (opts.expiresDays ?? 90) * DAY_MS,
        },
        readFile(opts.key, 'release key').toString('utf8'),
        readJson(opts.delegation, 'delegation'),
        (opts.rootRotation ?? []).map((f) => readJson<Signed<RootRotationBody>>(f, 'root rotation')),
      );
      writeJson(opts.out, manifest);
      if (opts.json) return printJson(manifest.release.signed);
      console.log(`Signed ${opts.name} ${opts.releaseVersion} (security ${opts.securityVersion}, ${bytes.length} bytes) → ${resolve(opts.out)}`);
    });

  fw.command('verify')
    .description('verify an image and its manifest against a root key set, as a device does; exit 1 with the reason when refused')
    .argument('<image>', 'the firmware image')
    .requiredOption('--manifest <file>', 'its manifest')
    .requiredOption('--root <file>', 'the root key set')
    .option('--model <model>', 'check compatibility with this model…')
    .option('--hw-rev <rev>', '…and hardware revision')
    .option('--min-security-version <n>', 'refuse below this security version', nonNegative)
    .option('--installed-version <semver>', 'refuse versions older than this', semver)
    .option('--json', 'print the verdict as JSON')
    .action((image: string, opts: { manifest: string; root: string; model?: string; hwRev?: string; minSecurityVersion?: number; installedVersion?: string; json?: boolean }) => {
      const verdict = verifyFirmware(readJson(opts.manifest, 'manifest'), {
        root: readJson(opts.root, 'root key set'),
        now: Date.now(),
        ...(opts.minSecurityVersion !== undefined ? { minSecurityVersion: opts.minSecurityVersion } : {}),
        ...(opts.installedVersion !== undefined ? { installedVersion: opts.installedVersion } : {}),
        ...(opts.model !== undefined ? { device: { model: opts.model, hardwareRevision: opts.hwRev ?? null } } : {}),
      });
      let result = verdict;
      if (verdict.ok) {
        const digest = new FirmwareDigest(verdict.release.size);
        digest.update(readFile(image, 'image'));
        result = checkImage(verdict.release, digest.digest()) ?? verdict;
      }
      if (opts.json) printJson(result.ok ? { ok: true, release: result.release } : result);
      else if (result.ok) console.log(`OK: ${result.release.name} ${result.release.version} (security ${result.release.securityVersion}), signed by release key ${result.releaseKeyId.slice(0, 16)}…`);
      else console.error(`refused (${result.reason}): ${result.detail}`);
      if (!result.ok) throw new Exit(EXIT.failure);
    });

  fw.command('upload')
    .description('upload a signed image: the platform verifies the manifest, then the image, and publishes it')
    .argument('<image>', 'the firmware image')
    .requiredOption('--manifest <file>', 'its manifest')
    .option('--json', 'print the artifact as JSON')
    .action(async (image: string, opts: { manifest: string; json?: boolean }) => {
      const session = openSession(env);
      const manifest = readJson<FirmwareManifest>(opts.manifest, 'manifest');
      const bytes = readFile(image, 'image');
      const created = await session.call<Artifact>('POST', '/api/v1/firmware', { body: { manifest } });
      const a = await session.call<Artifact>('PUT', `/api/v1/firmware/${encodeURIComponent(created.id)}/image`, { raw: new Uint8Array(bytes) });
      if (opts.json) return printJson(a);
      console.log(`Published ${a.name} ${a.version} as ${a.id} (${a.size} bytes, security ${a.securityVersion}).`);
    });

  fw.command('list')
    .description('firmware artifacts, newest first')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }) => {
      const list = await openSession(env).call<Artifact[]>('GET', '/api/v1/firmware');
      if (opts.json) return printJson(list);
      printTable(
        ['id', 'name', 'version', 'security', 'hardware', 'size', 'state', 'expires'],
        list.map((a) => [a.id, a.name, a.version, a.securityVersion, `${a.model} ${a.hardwareRevisions.join('/')}`, a.size, a.state, time(a.expiresAt)]),
        'No firmware.',
      );
    });
}
