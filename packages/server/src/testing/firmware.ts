import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type FirmwareManifest, type ReleaseBody, delegateReleaseKeys, generateFirmwareKey, rootKeySet, signRelease } from '@bulwark/protocol';
import type { ApiResponse, TestServer } from './harness.js';

/** Test-only: a 2-of-3 root key set, a delegated release key, signed releases and uploads. */

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface FirmwareKit {
  readonly roots: ReturnType<typeof generateFirmwareKey>[];
  readonly releaseKey: ReturnType<typeof generateFirmwareKey>;
  readonly rootFile: string;
  release(image: Buffer, over?: Partial<Omit<ReleaseBody, 'type'>>): FirmwareManifest;
}

export function firmwareKit(dir: string, now = Date.now()): FirmwareKit {
  const roots = [generateFirmwareKey(), generateFirmwareKey(), generateFirmwareKey()];
  const releaseKey = generateFirmwareKey();
  const rootFile = join(dir, 'firmware-root.json');
  writeFileSync(rootFile, JSON.stringify(rootKeySet(2, roots)));
  const delegation = delegateReleaseKeys({ version: 1, expires: now + 365 * 86_400_000, keys: [releaseKey] }, [roots[0]!.privateKeyPem, roots[1]!.privateKeyPem]);
  return {
    roots,
    releaseKey,
    rootFile,
    release: (image, over = {}) =>
      signRelease(
        {
          name: 'gw-fw',
          version: '2.0.0',
          securityVersion: 5,
          hardware: { model: 'gw-1', hardwareRevisions: ['C'] },
          size: image.length,
          sha256: sha256(image),
          issuedAt: now - 1000,
          expires: now + 30 * 86_400_000,
          ...over,
        },
        releaseKey.privateKeyPem,
        delegation,
      ),
  };
}

/** POST the manifest, then PUT the image; resolves with the last answer (or the refusal). */
export async function uploadFirmware(s: TestServer, token: string, manifest: unknown, image: Buffer): Promise<ApiResponse> {
  const created = await s.api('POST', '/api/v1/firmware', { token, body: { manifest } });
  if (created.status !== 201) return created;
  const res = await fetch(`${s.url}/api/v1/firmware/${created.body.id as string}/image`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(image),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined };
}
