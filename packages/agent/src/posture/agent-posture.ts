import type { BootPosture, HealthReport } from '@bulwark/protocol';
import type { AgentLogger } from '../logs.js';
import { LinuxPostureProbe } from './linux-probe.js';
import { POSTURE_TIMEOUT_MS, type PostureProbe, runProbe, withPosture } from './probe.js';

/**
 * Many agents in one process (a gateway, the simulator) share the default probe: one read of
 * /proc and sshd_config serves every report asked for within `ttlMs`.
 */
export class SharedPostureProbe implements PostureProbe {
  #last: { at: number; result: ReturnType<PostureProbe['probe']> } | undefined;

  constructor(
    private readonly inner: PostureProbe,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  probe(): ReturnType<PostureProbe['probe']> {
    const t = this.now();
    if (this.#last && t - this.#last.at < this.ttlMs) return this.#last.result;
    const result = this.inner.probe();
    this.#last = { at: t, result };
    // A failure is not kept: the next report asks again.
    result.catch(() => {
      if (this.#last?.result === result) this.#last = undefined;
    });
    return result;
  }
}

let shared: PostureProbe | undefined;

/** The probe an agent gets when it is given none: the Linux one (shared in the process), or none elsewhere. */
export function defaultPostureProbe(): PostureProbe | undefined {
  if (process.platform !== 'linux') return undefined;
  shared ??= new SharedPostureProbe(new LinuxPostureProbe(), 5_000);
  return shared;
}

/** The posture part of the agent: the probe, run for every health report, and the verified-boot result of this start. */
export class AgentPosture {
  #boot: BootPosture | undefined;
  #bootChecked: Promise<void> = Promise.resolve();

  /** `bootWaitMs`: how long a report waits for the boot check (it hashes the whole image) before it goes without `boot`. */
  constructor(
    private readonly probe: PostureProbe | undefined,
    private readonly log: AgentLogger,
    private readonly bootWaitMs = POSTURE_TIMEOUT_MS,
  ) {}

  /** Runs once at start: whether the running slot's image verifies against its signed manifest. */
  checkBoot(verify: () => Promise<BootPosture>): void {
    this.#bootChecked = verify().then(
      (b) => {
        this.#boot = b;
        if (!b.verified) this.log.error('the running firmware image does not verify against its signed manifest', { slot: b.slot, reason: b.reason, detail: b.detail });
      },
      (err: unknown) => this.log.error('could not check the running firmware image; boot left out of the posture', { err: String(err) }),
    );
  }

  /**
   * The report with whatever posture could be read (none when the probe fails: logged, never the
   * report's loss). A boot check not done within the probe's time limit (a stalled flash read) is
   * left out of this report, not waited for: a trial boot's health reports must not stall; a later report carries it.
   */
  async add(report: HealthReport): Promise<HealthReport> {
    const [probed] = await Promise.all([this.probe ? runProbe(this.probe, (msg, data) => this.log.warn(msg, data)) : undefined, this.#bootReady()]);
    return withPosture(report, probed, this.#boot);
  }

  async #bootReady(): Promise<void> {
    if (this.#boot) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.bootWaitMs);
    });
    try {
      if (await Promise.race([this.#bootChecked.then(() => false), late])) this.log.warn(`the boot check is not done after ${this.bootWaitMs} ms; boot left out of this report`);
    } finally {
      clearTimeout(timer);
    }
  }
}
