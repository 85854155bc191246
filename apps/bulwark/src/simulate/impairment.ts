import { ImpairProxy } from './impair-proxy.js';
import { NetNamespace } from './netns.js';
import type { Scenario } from './scenario.js';
import { rng } from './values.js';

/**
 * What the scenario's phases need: the proxy for latency, jitter, resets, partitions and
 * flapping; a network namespace too for packet loss and bandwidth caps, when this machine
 * allows one (else those are listed as not made, with why).
 */
export async function impairment(s: Scenario, target: { host: string; port: number }, runId: string, say: (line: string) => void): Promise<{ proxy: ImpairProxy | undefined; ns: NetNamespace | undefined; nsPorts: number[]; notMade: string[] }> {
  const kernel = s.phases.filter((p) => p.impair.lossPercent > 0 || p.impair.bandwidthKbit !== null);
  const user = s.phases.some((p) => p.impair.latencyMs > 0 || p.impair.jitterMs > 0 || p.impair.resetsPerMinute > 0 || p.impair.partition > 0 || p.impair.flapping !== null);
  if (!user && kernel.length === 0) return { proxy: undefined, ns: undefined, nsPorts: [], notMade: [] };
  const why = kernel.length > 0 ? await NetNamespace.unavailable() : undefined;
  const ns = kernel.length > 0 && why === undefined ? await NetNamespace.create(runId) : undefined;
  try {
    const proxy = await ImpairProxy.start(target, 100, rng(s.seed ^ 0xbad), ns?.hostIp);
    const nsPorts = ns ? await ns.forward(proxy.ports) : [];
    if (ns) say(`network namespace ${ns.name}: packet loss and bandwidth caps on the devices' path`);
    const notMade =
      why === undefined
        ? []
        : kernel.flatMap((p) => [
            ...(p.impair.lossPercent > 0 ? [`${p.name}: ${p.impair.lossPercent} % packet loss (${why}: it needs a network namespace)`] : []),
            ...(p.impair.bandwidthKbit !== null ? [`${p.name}: a ${p.impair.bandwidthKbit} kbit/s cap (${why}: it needs a network namespace)`] : []),
          ]);
    for (const n of notMade) say(`not made: ${n}`);
    return { proxy, ns, nsPorts, notMade };
  } catch (err) {
    await ns?.close();
    throw err;
  }
}
