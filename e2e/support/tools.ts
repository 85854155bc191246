import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import { childEnv } from './cli.js';

/**
 * Third-party programs (mosquitto clients, openssl) as child processes: every wait is
 * bounded, every child is killed in t.after if it still runs.
 */

export interface ToolResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Milliseconds from spawn to exit. */
  readonly ms: number;
}

export const describe = (r: ToolResult) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** Rejects when `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class ToolProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly closed: Promise<ToolResult>;
  readonly #started = performance.now();

  constructor(
    readonly command: string,
    args: readonly string[],
    input?: string,
  ) {
    this.child = spawn(command, args, { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin.on('error', () => undefined);
    this.child.stdin.end(input);
    this.child.stdout.setEncoding('utf8').on('data', (c: string) => {
      this.stdout += c;
    });
    this.child.stderr.setEncoding('utf8').on('data', (c: string) => {
      this.stderr += c;
    });
    this.closed = new Promise((resolve, reject) => {
      this.child.once('error', reject);
      this.child.once('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, ms: performance.now() - this.#started }));
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves when stdout or stderr matches; rejects when the process ends first or after `ms`. */
  waitFor(pattern: RegExp, ms: number): Promise<RegExpExecArray> {
    const found = new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(this.stdout) ?? pattern.exec(this.stderr);
        if (m) {
          off();
          resolve(m);
        }
      };
      const off = () => {
        this.child.stdout.off('data', check);
        this.child.stderr.off('data', check);
      };
      this.child.stdout.on('data', check);
      this.child.stderr.on('data', check);
      this.closed.then((r) => {
        off();
        const m = pattern.exec(r.stdout) ?? pattern.exec(r.stderr);
        if (m) resolve(m);
        else reject(new Error(`${this.command} ended before printing ${pattern}: ${describe(r)}`));
      }, reject);
      check();
    });
    return within(found, ms, `${this.command} printing ${pattern}\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`);
  }

  /** The exit, within `ms`. */
  exit(ms: number): Promise<ToolResult> {
    return within(this.closed, ms, `${this.command} exiting`);
  }
}

export function spawnTool(t: TestContext, command: string, args: readonly string[], input?: string): ToolProcess {
  const p = new ToolProcess(command, args, input);
  t.after(async () => {
    if (p.running) {
      p.child.kill('SIGKILL');
      await p.closed.catch(() => undefined);
    }
  });
  return p;
}

/** Runs a program to its end; killed (and the test failed) if it takes longer than `ms`. */
export async function runTool(t: TestContext, command: string, args: readonly string[], options: { input?: string; ms?: number } = {}): Promise<ToolResult> {
  const p = spawnTool(t, command, args, options.input);
  try {
    return await p.exit(options.ms ?? 20_000);
  } catch (err) {
    p.child.kill('SIGKILL');
    throw err;
  }
}
