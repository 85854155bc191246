import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checklistMarkdown } from './security-audit.js';

describe('bulwark audit --markdown', () => {
  it('keeps device-supplied evidence inside its table cell: pipes, newlines and HTML are escaped', () => {
    const md = checklistMarkdown({
      at: Date.UTC(2026, 0, 1),
      summary: { pass: 0, warn: 0, fail: 1 },
      checks: [
        {
          id: 'device-posture',
          title: 'Device posture',
          status: 'fail',
          etsi: ['5.6-4'],
          remediation: 'close <them> | now',
          evidence: ['gw-1: the image in slot b does not verify (x: a\n| injected | row |\r\n<img src=x onerror=alert(1)>)', 'gw-2: ok & fine'],
        },
      ],
    });
    const lines = md.split('\n');
    const rows = lines.filter((l) => l.startsWith('| FAIL'));
    assert.equal(rows.length, 1, md);
    assert.deepEqual(
      lines
        .slice(4)
        .filter((l) => l !== '')
        .map((l) => l.slice(0, 2)),
      ['| ', '|-', '| '],
      'header, rule and one row: a newline in evidence does not break the table',
    );
    const row = rows[0] ?? '';
    assert.doesNotMatch(md, /<img|<them>|\r/, 'no raw HTML from evidence or remediation');
    assert.match(row, /&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.match(row, /a \\\| injected \\\| row \\\|/);
    assert.ok(row.includes('&gt;)<br>gw-2: ok &amp; fine |'), 'the items are still joined with <br>');
    assert.match(row, /close &lt;them&gt; \\\| now \|$/);
  });
});
