/**
 * Every metric the server can emit, read from its code: each `new Counter|Gauge|Histogram|Summary`
 * in packages/server/src (its name, type, help text and label names, and the file that defines
 * it), plus the Node.js process metrics prom-client adds with the `bulwark_` prefix. The metrics
 * reference (docs/reference/metrics.md) is generated from it, and a test compares it with what a
 * running server emits, and with every metric the Prometheus rules and the Grafana dashboard name.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import ts from 'typescript';

export interface MetricDefinition {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary';
  readonly help: string;
  readonly labels: readonly string[];
  /** Where it is defined (relative to the repository), or `prom-client` for the process metrics. */
  readonly source: string;
}

const root = new URL('..', import.meta.url).pathname;
const KINDS = new Map([
  ['Counter', 'counter'],
  ['Gauge', 'gauge'],
  ['Histogram', 'histogram'],
  ['Summary', 'summary'],
] as const);

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'testing') sourceFiles(path, out);
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

function text(node: ts.Expression | undefined): string | undefined {
  if (!node) return undefined;
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    const [a, b] = [text(node.left), text(node.right)];
    return a !== undefined && b !== undefined ? a + b : undefined;
  }
  return undefined;
}

function property(obj: ts.ObjectLiteralExpression, name: string): ts.Expression | undefined {
  for (const p of obj.properties) if (ts.isPropertyAssignment(p) && p.name.getText() === name) return p.initializer;
  return undefined;
}

/** The metrics defined in the server's code, in file order. */
export function codeMetrics(): MetricDefinition[] {
  const found: MetricDefinition[] = [];
  for (const file of sourceFiles(join(root, 'packages/server/src'))) {
    const code = readFileSync(file, 'utf8');
    if (!/new (Counter|Gauge|Histogram|Summary)\b/.test(code)) continue;
    const sf = ts.createSourceFile(file, code, ts.ScriptTarget.ES2022, true);
    const visit = (node: ts.Node): void => {
      if (ts.isNewExpression(node) && ts.isIdentifier(node.expression)) {
        const type = KINDS.get(node.expression.text as 'Counter');
        const arg = node.arguments?.[0];
        if (type && arg && ts.isObjectLiteralExpression(arg)) {
          const name = text(property(arg, 'name'));
          if (name === undefined) throw new Error(`${relative(root, file)}: a ${node.expression.text} whose name is not a string literal; the metrics reference cannot list it`);
          const labels = property(arg, 'labelNames');
          const list = labels && ts.isAsExpression(labels) ? labels.expression : labels;
          found.push({
            name,
            type,
            help: text(property(arg, 'help')) ?? '',
            labels: list && ts.isArrayLiteralExpression(list) ? list.elements.map((e) => text(e) ?? e.getText()) : [],
            source: relative(root, file),
          });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found;
}

/** The Node.js process metrics prom-client collects, with the server's prefix. */
export async function processMetrics(): Promise<MetricDefinition[]> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'bulwark_' });
  // Label names as each metric declares them: the series present at one moment depend on the
  // process (a run with no open handles has no `type` series), and the reference must not.
  const declared = new Map(registry.getMetricsAsArray().map((m) => [m.name, (m as unknown as { labelNames?: readonly string[] }).labelNames ?? []]));
  const json = await registry.getMetricsAsJSON();
  return json.map((m) => ({ name: m.name, type: String(m.type) as MetricDefinition['type'], help: m.help, labels: [...(declared.get(m.name) ?? [])].sort(), source: 'prom-client' }));
}

/** Every metric, each name once (a metric two places define, such as the proxy-header counters, is listed from the first). */
export async function metricsCatalogue(): Promise<MetricDefinition[]> {
  const byName = new Map<string, MetricDefinition>();
  for (const m of [...codeMetrics(), ...(await processMetrics())]) if (!byName.has(m.name)) byName.set(m.name, m);
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** The sample names a metric's series carry: histograms and summaries add suffixes. */
export function seriesNames(m: Pick<MetricDefinition, 'name' | 'type'>): string[] {
  if (m.type === 'histogram') return [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`];
  if (m.type === 'summary') return [m.name, `${m.name}_sum`, `${m.name}_count`];
  return [m.name];
}
