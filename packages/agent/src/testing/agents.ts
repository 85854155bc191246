import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Agent, AgentDeps } from '../agent.js';
import { createAgent } from '../create-agent.js';
import type { AgentConfigInput } from '../config.js';

/** Test-only: agent data directories and agents closed after the test. No server imports here. */

const closers = new Map<string, () => Promise<void>>();

/** A data directory removed after the test, once the agent using it (if any) is closed. */
export function agentDir(t: TestContext, id: string): string {
  const dir = mkdtempSync(join(tmpdir(), `bulwark-agent-${id}-`));
  t.after(async () => {
    for (const [key, close] of [...closers]) {
      if (key !== dir && !key.startsWith(`${dir}/`)) continue;
      closers.delete(key);
      await close();
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Creates an agent that is closed after the test (before its directory is removed). */
export async function startAgent(config: AgentConfigInput, deps: AgentDeps = {}): Promise<Agent> {
  const agent = await createAgent(config, deps);
  closers.set(config.dataDir, () => agent.close());
  return agent;
}
