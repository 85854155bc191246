import { describe, it } from 'node:test';
import { RuleTester } from 'eslint';
import tseslint from 'typescript-eslint';
import { contextBoundaries } from './context-boundaries.js';

RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const tester = new RuleTester({ languageOptions: { parser: tseslint.parser, ecmaVersion: 2023, sourceType: 'module' } });
const src = '/repo/packages/server/src';
const deep = [{ messageId: 'deep' }];

tester.run('context-boundaries', contextBoundaries, {
  valid: [
    // Another context through its index.ts, in each spelling.
    { filename: `${src}/ingest/pipeline.ts`, code: "import { SchemaService } from '../schemas/index.js';" },
    { filename: `${src}/ingest/pipeline.ts`, code: "import { SchemaService } from '../schemas/';" },
    { filename: `${src}/ingest/pipeline.ts`, code: "import { SchemaService } from '../schemas';" },
    { filename: `${src}/gateway/mqtt/gateway.ts`, code: "import type { IngestService } from '../../ingest/index.js';" },
    // Anything inside the own context, however deep.
    { filename: `${src}/gateway/mqtt/gateway.ts`, code: "import { DeviceTls } from '../device-tls.js';" },
    { filename: `${src}/store/sql/devices.ts`, code: "import { Where } from './where.js';" },
    // Top-level files of src: the composition root and what it shares.
    { filename: `${src}/ingest/routes.ts`, code: "import type { ServerDeps } from '../server-types.js';" },
    { filename: `${src}/server.ts`, code: "import { SqliteStore } from './store/sqlite/sqlite-store.js';" },
    // testing/ wires whole servers for the tests.
    { filename: `${src}/testing/harness.ts`, code: "import { LocalSessionTable } from '../gateway/sessions-local.js';" },
    // Packages and files outside packages/server/src are not this rule's business.
    { filename: `${src}/ingest/routes.ts`, code: "import { PlatformError } from '@bulwark/core';" },
    { filename: '/repo/packages/agent/src/agent.ts', code: "import { x } from '../../server/src/ota/service.js';" },
  ],
  invalid: [
    { filename: `${src}/ingest/pipeline.ts`, code: "import { SchemaService } from '../schemas/service.js';", errors: deep },
    { filename: `${src}/store/sql/devices.ts`, code: "import type { Device } from '../../registry/registry.js';", errors: deep },
    { filename: `${src}/cluster/index.ts`, code: "export { NatsBus } from '../bus/nats-bus.js';", errors: deep },
    { filename: `${src}/cluster/index.ts`, code: "export * from '../bus/nats-bus.js';", errors: deep },
    { filename: `${src}/stream/routes.ts`, code: "const m = await import('../ingest/export-request.js');", errors: deep },
    { filename: `${src}/stream/routes.ts`, code: "type T = import('../ingest/export-request.js').ExportRequest;", errors: deep },
    // A sub-folder's index.ts is still inside the other context.
    { filename: `${src}/ingest/wiring.ts`, code: "import { PgStore } from '../store/postgres/index.js';", errors: deep },
    // The report names the import to write instead.
    {
      filename: `${src}/gateway/https/device-https.ts`,
      code: "import { HTTP_STATUS } from '../../http/errors.js';",
      errors: [{ message: "'../../http/errors.js' reaches into http/'s files from gateway/: import '../../http/index.js' (its index.ts) and export what is needed there." }],
    },
  ],
});
