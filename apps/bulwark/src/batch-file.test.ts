import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, describe, it } from 'node:test';
import { parseCsv, readManifest } from './batch-file.js';
import { makeKeyAndCsr } from './device-keys.js';
import type { CliError } from './errors.js';

function file(t: TestContext, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-manifest-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const problems = async (path: string) => {
  try {
    await readManifest(path);
  } catch (err) {
    return (err as CliError).message;
  }
  assert.fail('the manifest was accepted');
};

describe('batch manifest', () => {
  it('parses RFC 4180 CSV: quotes, doubled quotes, line breaks in quotes, CRLF, BOM, blank lines', () => {
    const records = parseCsv('\uFEFFid,serial\r\n"a,1","say ""hi"""\r\n\r\nb,"two\nlines"\nc,');
    assert.deepEqual(records, [
      { cells: ['id', 'serial'], line: 1 },
      { cells: ['a,1', 'say "hi"'], line: 2 },
      { cells: ['b', 'two\nlines'], line: 4 },
      { cells: ['c', ''], line: 6 },
    ]);
  });

  it('maps column aliases, splits tags, reads CSRs from PEM text or a path beside the file', async (t) => {
    const { csrPem } = await makeKeyAndCsr('d-2');
    const path = file(t, 'm.csv', `ID,Serial,HW_Rev,tags,csr\nd-1,S1,A,lab;floor:2,\nd-2,,B,,d-2.csr\nd-3,,,,"${csrPem}"\n`);
    writeFileSync(join(path, '..', 'd-2.csr'), csrPem);
    const m = await readManifest(path);
    assert.deepEqual(m.devices[0], { id: 'd-1', serial: 'S1', hardwareRevision: 'A', tags: ['lab', 'floor:2'] });
    assert.deepEqual(m.devices[1], { id: 'd-2', hardwareRevision: 'B', csr: csrPem });
    assert.equal(m.devices[2]?.csr, csrPem.trim());
    assert.deepEqual(m.where, ['line 2', 'line 3', 'line 4']);
  });

  it("reads a JSON array with the API's field names", async (t) => {
    const path = file(t, 'm.json', JSON.stringify([{ id: 'j-1', hardwareRevision: 'C', tags: ['a'], firmwareVersion: '1.2.0' }]));
    assert.deepEqual((await readManifest(path)).devices, [{ id: 'j-1', hardwareRevision: 'C', tags: ['a'], firmwareVersion: '1.2.0' }]);
  });

  it('reports every problem at once: unknown columns, bad and repeated ids, unreadable or invalid CSRs', async (t) => {
    const csv = file(t, 'bad.csv', 'id,colour,csr\nok,red,\n-bad,blue,\nok,green,\nx,grey,nope.csr\ny,white,"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"\n');
    const text = await problems(csv);
    assert.match(text, /nothing was sent; 5 problems/);
    assert.match(text, /unknown column "colour"/);
    assert.match(text, /line 3: "-bad" cannot be a device id \(bad first character\)/);
    assert.match(text, /line 4: device ok already appears at line 2/);
    assert.match(text, /line 5: cannot read the CSR file .*nope\.csr: ENOENT/);
    assert.match(text, /line 6: the CSR of y is refused: not a PEM PKCS#10 certificate request/);
    assert.match(await problems(file(t, 'e.json', '{"id": "x"}')), /expected a JSON array/);
    assert.match(await problems(file(t, 'k.json', '[{"id": "x", "colour": "red"}, 3]')), /item 0: unknown key "colour"[\s\S]*item 1: expected an object/);
    assert.match(await problems(file(t, 'h.csv', 'serial\n1\n')), /the header has no "id" column/);
    assert.match(await problems(file(t, 'n.csv', 'id\n')), /no devices in the file/);
  });
});
