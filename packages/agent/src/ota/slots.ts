import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { FirmwareDigest, type FirmwareManifest } from '@bulwark/protocol';
import { writeFileDurableAsync } from '../identity.js';
import type { Slot } from './state.js';

export interface ImageDigest {
  readonly size: number;
  readonly sha256: string;
  readonly tooLong: boolean;
}

/**
 * Where the two firmware slots live. The default keeps them as files in the agent's data
 * directory; a device with real A/B partitions injects its own (writing a block device,
 * or handing the image to its package manager) and keeps the same guarantees: `write`
 * returns only once the slot is durable, and `digest` reads back what was written.
 */
export interface SlotStore {
  write(slot: Slot, fromFile: string, size: number, onProgress?: (done: number) => void): Promise<void>;
  digest(slot: Slot, declaredSize: number): Promise<ImageDigest>;
  path(slot: Slot): string;
  /**
   * Tells the bootloader what to start at the next boot: `trial` = try the new image once
   * (U-Boot: set the boot partition and upgrade_available=1), `committed` = the good slot.
   * Called before every reboot the updater asks for; must be idempotent.
   */
  switchTo?(slot: Slot, mode: 'trial' | 'committed'): Promise<void>;
  /** The new image is good: make it the bootloader's default (U-Boot: upgrade_available=0). Called after a commit and at every start; idempotent. */
  commit?(slot: Slot): Promise<void>;
  /** The slot the bootloader really started, when the device can tell (a bootloader that fell back on its own). */
  booted?(): Slot | undefined;
  /** An id of this OS boot (Linux: /proc/sys/kernel/random/boot_id): tells a reboot from a restart of the process. Only with booted(). */
  bootId?(): string | undefined;
}

const CHUNK = 64 * 1024;

/** Where the signed manifest of the image in a slot is kept (verified boot reads it at every start). */
export const manifestPath = (dir: string, slot: Slot): string => join(dir, `slot-${slot}.manifest.json`);

/** Keeps the manifest an image was installed from, before the switch to its slot. */
export function saveSlotManifest(dir: string, slot: Slot, manifest: FirmwareManifest): Promise<void> {
  return writeFileDurableAsync(manifestPath(dir, slot), JSON.stringify(manifest), 0o600);
}

export class FileSlotStore implements SlotStore {
  constructor(readonly dir: string) {}

  path(slot: Slot): string {
    return join(this.dir, `slot-${slot}.img`);
  }

  async write(slot: Slot, fromFile: string, size: number, onProgress?: (done: number) => void): Promise<void> {
    const src = await open(fromFile, 'r');
    const dst = await open(this.path(slot), 'w', 0o600).catch(async (err: unknown) => {
      await src.close();
      throw err;
    });
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      let done = 0;
      while (done < size) {
        const { bytesRead } = await src.read(buf, 0, Math.min(CHUNK, size - done), done);
        if (bytesRead === 0) throw new Error(`${fromFile} ended after ${done} of ${size} bytes`);
        await dst.write(buf, 0, bytesRead, done);
        done += bytesRead;
        onProgress?.(done);
      }
      await dst.sync();
    } finally {
      await src.close();
      await dst.close();
    }
  }

  digest(slot: Slot, declaredSize: number): Promise<ImageDigest> {
    return digestFile(this.path(slot), declaredSize);
  }
}

/** SHA-256 of a file's bytes up to `declaredSize`; `tooLong` when the file holds more. A missing file is an empty image. */
export function digestFile(path: string, declaredSize: number): Promise<ImageDigest> {
  const d = new FirmwareDigest(declaredSize);
  return new Promise((resolve, reject) => {
    const stream = createReadStream(path, { end: declaredSize, highWaterMark: CHUNK });
    stream.on('data', (chunk) => {
      if (!d.update(chunk as Buffer)) stream.destroy();
    });
    stream.once('close', () => resolve(d.digest()));
    stream.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? resolve(d.digest()) : reject(err)));
  });
}
