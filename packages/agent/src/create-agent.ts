import { mkdirSync } from 'node:fs';
import { Agent, type AgentDeps } from './agent.js';
import { seededRng } from './backoff.js';
import { type AgentConfigInput, resolveConfig } from './config.js';
import { enrollWithFiles, loadIdentity } from './identity.js';

/** Validates the config, loads or enrolls the identity, opens the queue and starts connecting. */
export async function createAgent(input: AgentConfigInput, deps: AgentDeps = {}): Promise<Agent> {
  const config = resolveConfig(input);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const dir = config.identity.dir ?? config.dataDir;
  if (config.identity.pkcs11) throw new Error("identity.pkcs11: mutual TLS with a PKCS#11-held key is not possible with Node's TLS stack; see docs/guides/agent.md (enroll with enrollWithPkcs11 for a token-held identity)");
  let identity = loadIdentity(dir);
  if (!identity) {
    const { claimToken, enrollUrl } = config.identity;
    if (!claimToken || !enrollUrl) throw new Error(`no certificate in ${dir}: set identity.claimToken and identity.enrollUrl to enroll on first start`);
    identity = await enrollWithFiles(dir, config.deviceId, enrollUrl, claimToken);
  }
  const agent = new Agent(config, identity, { ...deps, rng: deps.rng ?? seededRng((Math.random() * 2 ** 32) >>> 0) });
  agent.start();
  return agent;
}
