import type { SingletonJob } from './cluster/index.js';

/** What the platform's singletons are made of: most are jobs with start and stop already. */
export interface SingletonParts {
  readonly otaTickIntervalMs: number;
  readonly rollouts: { tick(): Promise<unknown>; idle(): Promise<void> };
  readonly countsFolder: { fold(): Promise<unknown>; start(): void; stop(): void | Promise<void> };
  readonly identity: { startCrlSigning(): void | Promise<void>; stopCrlSigning(): void | Promise<void> };
  readonly jobs: SingletonJob;
  readonly retention: SingletonJob;
  readonly deviceSweep: SingletonJob;
  readonly checkpoints: SingletonJob | undefined;
  readonly webhooks: SingletonJob;
  readonly alertNotifier: SingletonJob;
  readonly alertSweep: SingletonJob;
}

/**
 * Jobs that must run once in the whole platform, by name: on this process in embedded mode,
 * under a lease in a cluster.
 */
export function platformSingletons(p: SingletonParts): [string, SingletonJob][] {
  let otaTimer: NodeJS.Timeout | undefined;
  return [
    [
      'rollouts',
      {
        start: () => {
          if (p.otaTickIntervalMs <= 0) return;
          otaTimer = setInterval(() => void p.rollouts.tick(), p.otaTickIntervalMs);
          otaTimer.unref();
        },
        stop: async () => {
          clearInterval(otaTimer);
          await p.rollouts.idle();
        },
      },
    ],
    ['jobs', p.jobs],
    ['retention', p.retention],
    [
      'fleet-counts',
      {
        start: async () => {
          await p.countsFolder.fold();
          p.countsFolder.start();
        },
        stop: () => p.countsFolder.stop(),
      },
    ],
    ['device-sweep', p.deviceSweep],
    ['crl', { start: () => p.identity.startCrlSigning(), stop: () => p.identity.stopCrlSigning() }],
    ...(p.checkpoints ? [['audit-checkpoints', p.checkpoints] as [string, SingletonJob]] : []),
    ['webhooks', p.webhooks],
    ['alert-notifier', p.alertNotifier],
    ['alert-sweep', p.alertSweep],
  ];
}
