// A local ESLint rule: inside packages/server/src, a context (a first-level folder such
// as ingest/, gateway/, identity/) is reached from another context only through its
// index.ts (CONVENTIONS.md §1, DESIGN.md "Contexts"). Files at the top of src (server.ts,
// server-*.ts and the other composition-root files) pick adapters and may reach further,
// as may the folders named in `open` (testing/ by default). Tests are scoped in eslint.config.js.
import { dirname, posix, sep } from 'node:path';

const INDEX = new Set(['', 'index', 'index.js', 'index.ts']);

/** @type {import('eslint').Rule.RuleModule} */
export const contextBoundaries = {
  meta: {
    type: 'problem',
    docs: { description: 'Import another server context only through its index.ts' },
    schema: [
      {
        type: 'object',
        properties: {
          root: { type: 'string' },
          open: { type: 'array', items: { type: 'string' } },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      deep: "'{{source}}' reaches into {{target}}/'s files from {{context}}/: import '{{suggestion}}' (its index.ts) and export what is needed there.",
    },
  },
  create(context) {
    const options = context.options[0] ?? {};
    const root = `/${(options.root ?? 'packages/server/src').replace(/^\/|\/$/g, '')}/`;
    const open = new Set(options.open ?? ['testing']);
    const file = context.filename.split(sep).join('/');
    const at = file.lastIndexOf(root);
    if (at === -1) return {};
    const base = file.slice(0, at + root.length);
    const own = file.slice(base.length).split('/');
    // A file at the top of src is the composition root; open folders may reach anywhere.
    if (own.length < 2 || open.has(own[0])) return {};
    const ownContext = own[0];
    const dir = dirname(file).split(sep).join('/');

    const check = (node) => {
      const source = node?.type === 'Literal' && typeof node.value === 'string' ? node.value : undefined;
      if (!source || !source.startsWith('.')) return;
      const target = posix.resolve(dir, source);
      if (!target.startsWith(base)) return;
      const parts = target
        .slice(base.length)
        .split('/')
        .filter((p) => p !== '');
      if (parts.length < 2 || parts[0] === ownContext) return; // a top-level file, or the own context
      if (INDEX.has(parts.slice(1).join('/'))) return;
      const suggestion = posix.relative(dir, `${base}${parts[0]}/index.js`);
      context.report({
        node,
        messageId: 'deep',
        data: { source, target: parts[0], context: ownContext, suggestion: suggestion.startsWith('.') ? suggestion : `./${suggestion}` },
      });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
      TSImportType: (node) => check(node.argument?.type === 'TSLiteralType' ? node.argument.literal : node.argument),
    };
  },
};

export default { rules: { 'context-boundaries': contextBoundaries } };
