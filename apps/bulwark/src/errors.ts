/** Exit codes scripts can rely on. */
export const EXIT = {
  ok: 0,
  /** The call failed: an API error, an unreachable server, a start failure. */
  failure: 1,
  /** The command line or the configuration is wrong; nothing was attempted. */
  usage: 2,
  /** `audit-log verify` found a broken hash chain. */
  auditBroken: 3,
  /** `bulwark audit` found a failing check (or, with --strict, a warning). */
  checklistFailed: 4,
} as const;

/**
 * An error the CLI reports as `error <code>: <message>` before exiting with `exitCode`.
 * Codes are the server's `BULWARK_ERR_*` codes when the API answered, `BULWARK_CLI_*` for
 * problems found on this side.
 */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number = EXIT.failure,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError('BULWARK_CLI_USAGE', message, EXIT.usage);

/** Ends the command with an exit code after it has printed what it had to say. */
export class Exit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'Exit';
  }
}

/** Turns anything thrown into one line (or one block) on stderr and an exit code. */
export function describeError(err: unknown): { text: string; exitCode: number } {
  if (err instanceof CliError) return { text: `error ${err.code}: ${err.message}`, exitCode: err.exitCode };
  // PlatformError (from the server library) and Node system errors both carry a string code.
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown };
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  const code = typeof e.code === 'string' ? e.code : undefined;
  return {
    text: code ? `error ${code}: ${message}` : `error: ${message}`,
    exitCode: code === 'BULWARK_ERR_CONFIG_INVALID' ? EXIT.usage : EXIT.failure,
  };
}
