import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';

/** One built file, held in memory (the whole dashboard is a few hundred kilobytes). */
export interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

function asset(path: string): Asset {
  const body = readFileSync(path);
  return { body, type: TYPES[extname(path)] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/**
 * The Vite build output (index.html and assets/) read into memory. It is read again when
 * index.html changes, so `npm run build:dashboard` takes effect without a restart, and a
 * server started before the first build serves the dashboard as soon as it exists.
 */
export class DashboardAssets {
  #stamp = -1;
  #index: Asset | undefined;
  #files = new Map<string, Asset>();

  constructor(readonly dir: string) {}

  /** index.html, or undefined when the dashboard has not been built. */
  index(): Asset | undefined {
    this.#refresh();
    return this.#index;
  }

  /** A file under assets/ by its (hashed) name. */
  file(name: string): Asset | undefined {
    if (this.#index === undefined) this.#refresh();
    return this.#files.get(name);
  }

  #refresh(): void {
    const indexPath = join(this.dir, 'index.html');
    const stamp = existsSync(indexPath) ? statSync(indexPath).mtimeMs : -1;
    if (stamp === this.#stamp) return;
    this.#stamp = stamp;
    this.#index = undefined;
    this.#files = new Map();
    if (stamp < 0) return;
    const assetsDir = join(this.dir, 'assets');
    if (existsSync(assetsDir)) {
      for (const entry of readdirSync(assetsDir, { withFileTypes: true })) {
        if (entry.isFile()) this.#files.set(entry.name, asset(join(assetsDir, entry.name)));
      }
    }
    this.#index = asset(indexPath);
  }
}
