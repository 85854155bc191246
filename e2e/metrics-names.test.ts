import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { type TestServer, startTestServer } from '../packages/server/src/testing/harness.js';
import { type RunningEngine, describeWith, startNats } from '../packages/server/src/testing/services.js';
import { twoClusterNodes } from '../packages/server/src/testing/cluster-nodes.js';
import { type MetricDefinition, metricsCatalogue, seriesNames } from '../scripts/metrics-catalogue.js';
import { OPTIONAL_SETTINGS } from '../scripts/metrics-reference.js';
import { ROOT } from './support/cli.js';

/**
 * The Prometheus rules and the Grafana dashboard in deploy/ against what servers really emit,
 * and the generated metrics reference against the same: a rule or a panel naming a metric no
 * server emits (a typo, a renamed metric) fails here, and so does a metric a server emits that
 * the reference does not list.
 */

const RULES = 'deploy/prometheus/rules.yml';
const DASHBOARD = 'deploy/grafana/bulwark.json';
const run = promisify(execFile);

/** Metric names a running server declares on /metrics (`# TYPE` lines: every registered metric, observed or not). */
async function emitted(s: TestServer): Promise<Set<string>> {
  const text = (await s.api('GET', '/metrics')).text;
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));
}

/** Every `bulwark_*` name in a PromQL-holding file. */
function namesIn(file: string): Set<string> {
  return new Set(readFileSync(join(ROOT, file), 'utf8').match(/\bbulwark_[a-z0-9_]+/g) ?? []);
}

/** The metric a series name belongs to (histograms add _bucket, _sum, _count). */
function metricOf(series: string, catalogue: readonly MetricDefinition[]): MetricDefinition | undefined {
  return catalogue.find((m) => seriesNames(m).includes(series));
}

const PROMTOOL = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
if (!PROMTOOL && process.env.CI === 'true') throw new Error('promtool is not installed but CI=true: the rules check must run in CI (.ci/run installs prometheus)');

describe('Prometheus rules and Grafana dashboard', () => {
  it('promtool accepts the rules', { skip: PROMTOOL ? false : 'promtool not installed: SKIPPED (apt-get install prometheus)' }, async () => {
    const { stdout } = await run('promtool', ['check', 'rules', join(ROOT, RULES)]);
    assert.match(stdout, /SUCCESS: \d+ rules found/);
  });

  it('every metric the rules and the dashboard name is defined in the code and emitted by a server of its mode; the reference lists every metric an embedded server emits', async (t) => {
    const catalogue = await metricsCatalogue();
    const named = new Map<string, string[]>();
    for (const file of [RULES, DASHBOARD]) for (const series of namesIn(file)) named.set(series, [...(named.get(series) ?? []), file]);
    assert.ok(named.size > 20, "the files name the platform's metrics");
    const undefinedNames = [...named].filter(([series]) => !metricOf(series, catalogue));
    assert.deepEqual(undefinedNames, [], "these names are no metric of the server's code");

    // Embedded servers: with the defaults, then with each optional listener on.
    const embedded = await startTestServer(t);
    const seen = await emitted(embedded);
    // The CA's gauges carry real times: the root CRL valid into the future, the root CA for years.
    const text = (await embedded.api('GET', '/metrics')).text;
    const sample = (name: string) => Number(new RegExp(`^${name}\\{ca="root"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.ok(sample('bulwark_crl_next_update_seconds') > Date.now() / 1000, 'the root CRL is valid past now');
    assert.ok(sample('bulwark_ca_not_after_seconds') > Date.now() / 1000 + 365 * 86_400, 'the root CA ends years from now');
    for (const [, file] of OPTIONAL_SETTINGS) for (const n of await emitted(await startTestServer(t, { config: file }))) seen.add(n);
    const unlisted = [...seen].filter((n) => !catalogue.some((m) => m.name === n));
    assert.deepEqual(unlisted, [], 'a server emits metrics the reference does not list: run npm run docs:gen');
    const embeddedOnly = [...named.keys()].filter((series) => !seen.has(metricOf(series, catalogue)?.name ?? ''));
    assert.ok(
      embeddedOnly.every((s) => s.startsWith('bulwark_stream_')),
      `named, not emitted by an embedded server, and not a cluster metric: ${embeddedOnly.join(', ')}`,
    );
  });
});

describeWith('Prometheus rules and Grafana dashboard in cluster mode', ['nats-server'], () => {
  // Stopped after the nodes (they leave the cluster through it).
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  it('the cluster-only metrics the files name are emitted by a cluster node', async (t) => {
    const nodes = await twoClusterNodes(t, nats.url);
    if (!nodes) return;
    const catalogue = await metricsCatalogue();
    const seen = await emitted(nodes.a);
    const named = [...namesIn(RULES), ...namesIn(DASHBOARD)].map((s) => metricOf(s, catalogue)?.name ?? s);
    const missing = [...new Set(named)].filter((n) => !seen.has(n) && n.startsWith('bulwark_stream_'));
    assert.deepEqual(missing, [], 'cluster metrics the files name that a cluster node does not emit');
    assert.ok(seen.has('bulwark_stream_writer_lag_messages'));
  });
});
