import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type Scenario, ScenarioError, checkScenario } from './scenario.js';

/** How a scenario arrives: a file's text, paths in it, and the command line's flags over it. */

/** The scenario file's text, JSON or YAML (by name, or by trying JSON first). */
export function parseScenarioText(text: string, fileName: string): unknown {
  try {
    return /\.ya?ml$/i.test(fileName) ? (parseYaml(text) as unknown) : (JSON.parse(text) as unknown);
  } catch (err) {
    throw new ScenarioError([{ path: '', reason: `not ${/\.ya?ml$/i.test(fileName) ? 'YAML' : 'JSON'}: ${(err as Error).message.split('\n')[0]}` }]);
  }
}

/** File paths in the scenario (the firmware root key set) taken relative to the scenario file's directory. */
export function withFilesFrom(dir: string, input: unknown): unknown {
  const s = input as { firmware?: { rootKeys?: unknown } } | null;
  const firmware = s?.firmware;
  if (!firmware || typeof firmware.rootKeys !== 'string' || isAbsolute(firmware.rootKeys)) return input;
  return { ...s, firmware: { ...firmware, rootKeys: join(dir, firmware.rootKeys) } };
}

/** What the flags for the common case give: a scenario of one profile, no impairment. */
export function scenarioFromFlags(flags: { devices?: number | undefined; rateSeconds?: number | undefined; durationMs?: number | undefined; name?: string | undefined; artifact?: string | undefined }, base?: unknown): Scenario {
  const s = (base ?? {}) as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...s };
  if (flags.devices !== undefined) merged.devices = flags.devices;
  if (flags.durationMs !== undefined) merged.duration = flags.durationMs;
  if (flags.name !== undefined) merged.name = flags.name;
  if (flags.rateSeconds !== undefined) {
    const profiles = (Array.isArray(s.profiles) ? s.profiles : [{}]) as Record<string, unknown>[];
    merged.profiles = profiles.map((p) => ({ ...p, interval: Math.round((flags.rateSeconds as number) * 1000) }));
  }
  if (flags.artifact !== undefined) {
    const actions = (Array.isArray(s.actions) ? s.actions : []) as Record<string, unknown>[];
    if (!actions.some((a) => 'rollout' in a)) throw new ScenarioError([{ path: 'actions', reason: "--artifact names the firmware of the scenario's rollout, and it has none" }]);
    merged.actions = actions.map((a) => ('rollout' in a ? { ...a, rollout: { ...(a.rollout as object), artifact: flags.artifact } } : a));
  }
  return checkScenario(merged);
}
