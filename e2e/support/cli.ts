import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * Runs the real `bulwark` command as a child process, the way an operator does. Every child
 * is killed in t.after if the test left it running; nothing waits on a timer where an event
 * (a line of output, an exit) can be awaited.
 */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN = join(ROOT, 'apps/bulwark/src/main.ts');
export const BIN = join(ROOT, 'apps/bulwark/bin/bulwark.mjs');
/** How one run of the CLI may take before the helper kills it and fails the test. */
const RUN_TIMEOUT_MS = 60_000;

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function tempDir(t: TestContext, prefix = 'bulwark-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The test process's environment without BULWARK_* (a developer's shell must not leak in), plus `extra`. */
export function childEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BULWARK_') && !k.startsWith('NODE_TEST')) env[k] = v;
  return { ...env, ...extra };
}

export interface SpawnOptions {
  readonly env?: Readonly<Record<string, string>>;
  /** Run through apps/bulwark/bin/bulwark.mjs (or this path, e.g. a symlink to it) instead of `node --import tsx src/main.ts`. */
  readonly bin?: string;
  /** Working directory (default: the repository root). */
  readonly cwd?: string;
  /** runCli: how long the run may take before it is killed (default RUN_TIMEOUT_MS). */
  readonly timeoutMs?: number;
}

/** A running CLI process whose output is collected as it arrives. */
export class CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly closed: Promise<CliResult>;

  constructor(args: readonly string[], options: SpawnOptions = {}) {
    const [command, argv] = options.bin !== undefined ? [options.bin === BIN ? process.execPath : options.bin, options.bin === BIN ? [BIN, ...args] : [...args]] : [process.execPath, ['--import', 'tsx', MAIN, ...args]];
    this.child = spawn(command, argv, { cwd: options.cwd ?? ROOT, env: childEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin.end();
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
    });
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.closed = new Promise((resolve, reject) => {
      this.child.once('error', reject);
      this.child.once('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves when standard output matches `pattern`; rejects if the process ends first. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(this.stdout);
        if (m) {
          done();
          resolve(m);
        }
      };
      const ended = (result: CliResult) => {
        done();
        const m = pattern.exec(result.stdout);
        if (m) resolve(m);
        else reject(new Error(`the process ended (code ${result.code}, signal ${result.signal}) before printing ${pattern}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`));
      };
      const done = () => this.child.stdout.off('data', check);
      this.child.stdout.on('data', check);
      this.closed.then(ended, reject);
      check();
    });
  }

  /** Sends a signal and waits for the process to end. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<CliResult> {
    if (this.running) this.child.kill(signal);
    return this.closed;
  }
}

/** Spawns the CLI; the process is killed when the test ends, if it still runs. */
export function spawnCli(t: TestContext, args: readonly string[], options: SpawnOptions = {}): CliProcess {
  const p = new CliProcess(args, options);
  t.after(async () => {
    if (p.running) {
      p.child.kill('SIGKILL');
      await p.closed.catch(() => undefined);
    }
  });
  return p;
}

/** Runs one CLI command to its end. */
export async function runCli(t: TestContext, args: readonly string[], options: SpawnOptions = {}): Promise<CliResult> {
  const p = spawnCli(t, args, options);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), options.timeoutMs ?? RUN_TIMEOUT_MS);
  try {
    return await p.closed;
  } finally {
    clearTimeout(timer);
  }
}

/** Parses the JSON a `--json` command printed, failing with its output when it is not JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test convenience
export function parseJson<T = any>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`expected JSON, got (code ${result.code}):\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
}
