// The part of cli-progress 3.12 the CLI uses (the package ships no types and
// @types/cli-progress is not installed).
declare module 'cli-progress' {
  export interface Options {
    format?: string;
    stream?: NodeJS.WritableStream;
    hideCursor?: boolean;
    clearOnComplete?: boolean;
    stopOnComplete?: boolean;
    etaBuffer?: number;
    fps?: number;
  }
  export interface Preset {
    readonly barCompleteChar: string;
    readonly barIncompleteChar: string;
  }
  export class SingleBar {
    constructor(options: Options, preset?: Preset);
    start(total: number, startValue: number, payload?: Record<string, unknown>): void;
    update(value: number, payload?: Record<string, unknown>): void;
    increment(step?: number, payload?: Record<string, unknown>): void;
    stop(): void;
  }
  const cliProgress: {
    SingleBar: typeof SingleBar;
    Presets: { readonly shades_classic: Preset; readonly legacy: Preset; readonly rect: Preset };
  };
  export default cliProgress;
}
