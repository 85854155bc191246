import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * The completion scripts `bulwark completion` prints, loaded in a real bash: what bash
 * offers for partial command lines, as it would at a Tab press.
 */

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));

async function script(shell: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', MAIN, 'completion', shell], { env: { ...process.env, BULWARK_CLI_CONFIG: '/nonexistent' } });
  return stdout;
}

describe('bulwark completion', () => {
  it('bash: completes commands, subcommands, options and option values from the command tree', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-completion-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'bulwark.bash');
    writeFileSync(file, await script('bash'));
    // Each case: the words typed so far (the last one being completed), then what bash offers.
    const cases: [string[], string][] = [
      [['dl'], 'dlq'],
      [['dlq', ''], 'list show replay purge --profile --help'],
      [['telemetry', 'l'], 'latest live'],
      [['--profile', 'staging', 'telemetry', 'rollups', 'd1', '--b'], '--bucket'],
      [['telemetry', 'rollups', 'd1', '--bucket', ''], '1m 1h'],
      [['schemas', 'list', '--output', 'n'], 'ndjson'],
      [['dlq', 'list', '--reason', 'unknown'], 'unknown_schema'],
      [['completion', '--h'], '--help'],
      [['start', '--http-p'], '--http-port'],
      [['devices', 'enroll', 'x', '--out', ''], ''],
    ];
    const probes = cases.map(([words]) => `COMP_WORDS=(bulwark ${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length}; COMPREPLY=(); _bulwark; echo "\${COMPREPLY[*]}"`);
    const { stdout } = await run('bash', ['--norc', '--noprofile', '-c', `source ${file} && complete -p bulwark && ${probes.join('; ')}`]);
    const [registration, ...answers] = stdout.split('\n');
    assert.equal(registration, 'complete -o default -F _bulwark bulwark');
    assert.deepEqual(
      answers.slice(0, cases.length),
      cases.map(([, expected]) => expected),
    );
    // compgen, as bash's own completion calls it, against the generated word list.
    const top = await run('bash', ['--norc', '--noprofile', '-c', `source ${file} && compgen -W "$(_bulwark_words '')" -- sch`]);
    assert.equal(top.stdout, 'schemas\n');
  });

  it('zsh: a script that defines the completion function and registers it', async () => {
    const text = await script('zsh');
    assert.match(text, /^#compdef bulwark\n/);
    assert.match(text, /^ {4}'dlq'\) items=\('list:dead letters, newest first' /m);
    assert.match(text, /'telemetry live\|--output'\) echo 'table json ndjson' ;;/);
    assert.match(text, /compdef _bulwark bulwark/);
    const usage = await run(process.execPath, ['--import', 'tsx', MAIN, 'completion', 'fish']).catch((err: { code: number; stderr: string }) => err);
    assert.equal((usage as { code: number }).code, 2);
    assert.match((usage as { stderr: string }).stderr, /value 'fish' is invalid for argument 'shell'\. Allowed choices are bash, zsh/);
  });
});
