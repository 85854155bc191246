import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { onBrokerCore } from './pin.js';

/** Child processes and temporary directories of one benchmark run, all cleaned up on exit, failure or Ctrl-C. */

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const started = performance.now();

/** One progress line on stderr. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

const exitHooks = new Set<() => void>();

/** Runs `hook` (synchronous) when the process ends, however it ends, after the children are killed; returns a function that removes it. */
export function atExit(hook: () => void): () => void {
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

function cleanupSync(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const hook of exitHooks) {
    try {
      hook();
    } catch {
      /* best effort: the process is ending */
    }
  }
  exitHooks.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

/** Kills every child and removes every temp dir when the process ends, however it ends. */
export function installCleanup(): void {
  process.on('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping children and removing temp dirs`);
      cleanupSync();
      process.exit(130);
    });
  }
}

/**
 * Starts a child on the broker's core (when pinning is on). Node children get a stdin pipe and
 * exit when it closes, so they die with this process even after a SIGKILL; stderr is passed through.
 */
export function startChild(command: string, args: readonly string[], env: Record<string, string> = {}, stderr: 'inherit' | 'pipe' = 'inherit'): ChildProcess {
  const [cmd, argv] = onBrokerCore(command, args);
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', stderr], env: { ...process.env, ...env } });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Starts a TypeScript file of bench/ in a child Node process through tsx. */
export function startTsChild(file: string, nodeFlags: readonly string[], env: Record<string, string>): ChildProcess {
  const path = new URL(file, import.meta.url).pathname;
  return startChild(process.execPath, [...nodeFlags, '--import', 'tsx', path], env);
}

/** Resolves with the first JSON line the child prints on stdout; rejects if it exits first or takes too long. */
export function firstJsonLine<T>(child: ChildProcess, what: string, timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    if (!child.stdout) return reject(new Error(`${what}: no stdout`));
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => fail(new Error(`${what}: no start-up line within ${timeoutMs} ms`)), timeoutMs);
    const onExit = (code: number | null) => fail(new Error(`${what} exited (${code}) before it was ready`));
    const fail = (err: Error) => {
      clearTimeout(timer);
      lines.close();
      child.off('exit', onExit);
      reject(err);
    };
    child.once('exit', onExit);
    lines.on('line', (line) => {
      if (!line.startsWith('{')) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      lines.close();
      child.stdout?.resume(); // keep draining whatever else it prints
      resolve(JSON.parse(line) as T);
    });
  });
}

/** SIGTERM, then SIGKILL if the child has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
