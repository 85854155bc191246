import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { type Clock, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import { type FirmwareRefusal, type RootKeySet, checkImage, verifyFirmware } from '@bulwark/protocol';
import type { ArtifactStorage, FirmwareArtifact, FirmwareRepository } from './ota.js';

export interface FirmwareSettings {
  readonly rootKeysFile: string;
  readonly artifactMaxBytes: number;
  readonly minSecurityVersion: number;
}

/** Refusals carry the reason in details, so that the audit entry and the caller both see it. */
export function firmwareRefused(reason: FirmwareRefusal | 'duplicate', detail: string): PlatformError {
  if (reason === 'duplicate') return new PlatformError('BULWARK_ERR_CONFLICT', detail, { details: { reason } });
  return new PlatformError('BULWARK_ERR_FIRMWARE_REFUSED', `firmware refused (${reason}): ${detail}`, { details: { reason } });
}

export function readRootKeySet(path: string): RootKeySet {
  let root: RootKeySet;
  try {
    root = JSON.parse(readFileSync(path, 'utf8')) as RootKeySet;
  } catch (err) {
    throw new PlatformError('BULWARK_ERR_OTA_NOT_CONFIGURED', `cannot read the firmware root key set at ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); create it with "bulwark firmware root"`);
  }
  if (root?.type !== 'root' || !Array.isArray(root.keys) || !Number.isSafeInteger(root.threshold) || root.threshold < 1 || root.threshold > root.keys.length) {
    throw new PlatformError('BULWARK_ERR_OTA_NOT_CONFIGURED', `${path} is not a root key set ({type: "root", threshold, keys})`);
  }
  return root;
}

/**
 * Publishing firmware: the metadata first (verified against the pinned root key set, the
 * fleet minimum security version and the clock), then the image (streamed, hashed, cut off
 * at the declared size). Nothing unverified is ever published.
 */
export class FirmwareService {
  readonly #receiving = new Set<string>();

  constructor(
    private readonly repo: FirmwareRepository,
    private readonly files: ArtifactStorage,
    private readonly settings: FirmwareSettings,
    private readonly deps: { clock: Clock; ids: IdGen; log: Logger },
  ) {}

  rootKeys(): RootKeySet {
    return readRootKeySet(this.settings.rootKeysFile);
  }

  /**
   * A short fingerprint of the root key set in force (`v<version>-<16 hex>` over its version,
   * threshold and keys), or `none` without a usable one: every node of a cluster must show the same.
   */
  rootKeysId(): string {
    let root: RootKeySet;
    try {
      root = this.rootKeys();
    } catch {
      return 'none';
    }
    const keys = root.keys.map((k) => [k.keyId, k.publicKey]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    const digest = createHash('sha256')
      .update(JSON.stringify([root.version ?? 1, root.threshold, keys]))
      .digest('hex')
      .slice(0, 16);
    return `v${root.version ?? 1}-${digest}`;
  }

  /** Step 1: verifies the manifest and records the artifact, awaiting its image. */
  async register(manifest: unknown, by: string): Promise<FirmwareArtifact> {
    const verdict = verifyFirmware(manifest, { root: this.rootKeys(), now: this.deps.clock.now(), minSecurityVersion: this.settings.minSecurityVersion });
    if (!verdict.ok) throw firmwareRefused(verdict.reason, verdict.detail);
    const r = verdict.release;
    if (r.size > this.settings.artifactMaxBytes) throw new PlatformError('BULWARK_ERR_FIRMWARE_TOO_LARGE', `the image declares ${r.size} bytes; ota.artifactMaxBytes is ${this.settings.artifactMaxBytes}`);
    const artifact: FirmwareArtifact = {
      id: this.deps.ids.next('fw'),
      name: r.name,
      version: r.version,
      securityVersion: r.securityVersion,
      model: r.hardware.model,
      hardwareRevisions: [...r.hardware.hardwareRevisions],
      size: r.size,
      sha256: r.sha256,
      expiresAt: r.expires,
      state: 'awaiting_image',
      manifest: manifest as FirmwareArtifact['manifest'],
      uploadedBy: by,
      createdAt: this.deps.clock.now(),
      publishedAt: null,
    };
    if (!(await this.repo.insert(artifact))) throw firmwareRefused('duplicate', `${r.name} ${r.version} is already uploaded`);
    return artifact;
  }

  /**
   * Step 2: the image. Refused unless it is exactly the declared size and SHA-256. A refused
   * image takes its registration with it (the refusal stays in the audit log): the same
   * upload, run again with the right image, then starts afresh instead of meeting a release
   * "already uploaded" that can never be published.
   */
  async receiveImage(id: string, body: Readable): Promise<FirmwareArtifact> {
    const artifact = await this.get(id);
    if (artifact.state !== 'awaiting_image') throw new PlatformError('BULWARK_ERR_CONFLICT', `firmware ${id} already has its image`);
    if (this.#receiving.has(id)) throw new PlatformError('BULWARK_ERR_CONFLICT', `the image of firmware ${id} is being uploaded right now`);
    this.#receiving.add(id);
    try {
      return await this.#receive(artifact, body);
    } catch (err) {
      await this.#drop(artifact, err);
      throw err;
    } finally {
      this.#receiving.delete(id);
    }
  }

  /** Forgets a registration whose image step failed; the repository never deletes a published one. */
  async #drop(artifact: FirmwareArtifact, why: unknown): Promise<void> {
    try {
      await this.repo.delete(artifact.id);
      if ((await this.repo.get(artifact.id)) === undefined) await this.files.remove(artifact.id);
      this.deps.log.info({ id: artifact.id, name: artifact.name, version: artifact.version, reason: (why as { details?: { reason?: unknown } }).details?.reason }, 'firmware image refused; registration dropped');
    } catch (err) {
      this.deps.log.error({ err, id: artifact.id }, 'could not drop the registration of a refused firmware image');
    }
  }

  async #receive(artifact: FirmwareArtifact, body: Readable): Promise<FirmwareArtifact> {
    const { id } = artifact;
    if (artifact.expiresAt <= this.deps.clock.now()) throw firmwareRefused('expired', `the metadata of ${artifact.name} ${artifact.version} expired while it waited for its image`);
    const image = await this.files.receive(id, body, artifact.size);
    const other = async (sha256: string) => {
      const a = await this.repo.findBySha256(sha256);
      return a && a.id !== id ? `${a.name} ${a.version}` : undefined;
    };
    const known = image.sha256 !== artifact.sha256 ? await other(image.sha256) : undefined;
    const bad = checkImage(artifact.manifest.release.signed, image, () => known);
    if (bad && !bad.ok) {
      image.discard();
      throw firmwareRefused(bad.reason, bad.detail);
    }
    await image.commit();
    await this.repo.markPublished(id, this.deps.clock.now());
    this.deps.log.info({ id, name: artifact.name, version: artifact.version }, 'firmware published');
    return this.get(id);
  }

  async get(id: string): Promise<FirmwareArtifact> {
    const a = await this.repo.get(id);
    if (!a) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no firmware ${id}`);
    return a;
  }

  list(limit: number): Promise<FirmwareArtifact[]> {
    return this.repo.list(limit);
  }

  /** A local file holding a published image (in a cluster, fetched from the shared store on first use). */
  imageFile(a: FirmwareArtifact): Promise<string> {
    return this.files.localFile(a);
  }
}
