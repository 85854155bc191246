import { existsSync, openSync, readSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAgent } from '../create-agent.js';
import { writeFileDurable } from '../identity.js';
import { FileSlotStore } from '../ota/slots.js';
import type { Slot } from '../ota/state.js';
import type { AgentConfigInput } from '../config.js';

/**
 * Test-only: one device in its own process, for power-cut tests. A reboot exits with 75
 * (the test starts the process again, as the bootloader would); `KILL_AT=state` or
 * `KILL_AT=state@percent` makes the process SIGKILL itself once, in that state (the marker
 * file remembers it was done). An image that begins with "BROKEN" fails the health check.
 * Prints `state <jobId> <state> <reason>` for every transition and `online` on connect.
 */
const [configFile] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configFile!, 'utf8')) as AgentConfigInput;
const killAt = process.env.KILL_AT;
const marker = join(config.dataDir, 'killed.marker');
const armed = killAt !== undefined && killAt !== '' && !existsSync(marker);
const [killState, killPercent] = (killAt ?? '').split('@');

function powerCut(): void {
  writeFileSync(marker, killAt ?? '');
  process.kill(process.pid, 'SIGKILL');
}

function activeImageBroken(slot: string): boolean {
  const file = join(config.dataDir, 'ota', `slot-${slot}.img`);
  if (!existsSync(file)) return false;
  const fd = openSync(file, 'r');
  const head = Buffer.alloc(6);
  readSync(fd, head, 0, 6, 0);
  closeSync(fd);
  return head.toString('latin1') === 'BROKEN';
}

/**
 * With BOOTED_SLOT set, the slots drive a bootloader environment file the way fw_setenv
 * drives U-Boot's (the test plays the bootloader at each start, see ota-platform.ts).
 */
const bootenvFile = join(config.dataDir, 'bootenv.json');
const bootloader =
  process.env.BOOTED_SLOT === 'a' || process.env.BOOTED_SLOT === 'b'
    ? {
        switchTo: async (slot: Slot, mode: 'trial' | 'committed') => writeFileDurable(bootenvFile, JSON.stringify({ bootPart: slot, upgradeAvailable: mode === 'trial', bootcount: 0 })),
        commit: async (slot: Slot) => writeFileDurable(bootenvFile, JSON.stringify({ bootPart: slot, upgradeAvailable: false, bootcount: 0 })),
        booted: () => process.env.BOOTED_SLOT as Slot,
        bootId: () => process.env.BOOT_ID,
      }
    : {};
const slots = Object.assign(new FileSlotStore(join(config.dataDir, 'ota')), bootloader);

const agent = await createAgent(config, {
  ota: {
    slots,
    reboot: async () => {
      await agent.close('ota reboot');
      process.exit(75);
    },
    healthCheck: () => !activeImageBroken(agent.status().firmware?.slot ?? 'a'),
    // Synchronous: the transition is on disk and nothing of it has happened yet (not even its report).
    onEvent: (e) => {
      if (e.type === 'state') console.log(`state ${e.jobId} ${e.state} ${e.reason ?? ''}`);
      if (!armed || e.state !== killState) return;
      if (killPercent === undefined && e.type === 'state') powerCut();
      if (killPercent !== undefined && e.type === 'progress' && e.done >= (e.total * Number(killPercent)) / 100) powerCut();
    },
  },
});
agent.on('connected', () => console.log('online'));
process.on('SIGTERM', () => void agent.close().then(() => process.exit(0)));
