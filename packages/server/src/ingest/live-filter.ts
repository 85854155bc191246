import type { DeviceFilter, GroupSelector, RegistryService } from '../registry/index.js';
import type { TelemetryRecord } from './ingest.js';

/** What a live subscriber asked for; every given part must match. */
export interface LiveQuery {
  readonly devices?: ReadonlySet<string>;
  readonly schema?: string;
  readonly tag?: string;
  /** The caller is limited to these device groups: only their devices. */
  readonly within?: readonly GroupSelector[];
}

/** How often a tag's members are read again while a subscription is open. */
export const TAG_REFRESH_MS = 30_000;
/** Most devices one tag (or group limit) subscription follows. */
const TAG_MAX_DEVICES = 100_000;

/**
 * The test a live stream applies to each stored reading. Matching runs on the pipeline's
 * hot path, so it is a set lookup: a tag's members are read from the registry when the
 * subscription starts and re-read every 30 s (a device tagged meanwhile joins within that).
 */
export class LiveFilter {
  /** Sets a reading's device must be in: a tag's members, the devices of the caller's groups. */
  #members: ReadonlySet<string>[] = [];
  #timer: NodeJS.Timeout | undefined;

  private constructor(private readonly query: LiveQuery) {}

  static async create(query: LiveQuery, registry: RegistryService): Promise<LiveFilter> {
    const filter = new LiveFilter(query);
    const reads: Pick<DeviceFilter, 'tag' | 'within'>[] = [];
    if (query.tag !== undefined) reads.push({ tag: query.tag });
    if (query.within !== undefined) reads.push({ within: query.within });
    if (reads.length > 0) {
      const read = () => Promise.all(reads.map((f) => deviceSet(registry, f)));
      filter.#members = await read();
      filter.#timer = setInterval(() => {
        read().then(
          (m) => {
            filter.#members = m;
          },
          () => undefined,
        ); // keep the last membership when the store is briefly unavailable
      }, TAG_REFRESH_MS);
      filter.#timer.unref();
    }
    return filter;
  }

  matches(r: TelemetryRecord): boolean {
    const q = this.query;
    return (q.devices === undefined || q.devices.has(r.deviceId)) && (q.schema === undefined || r.schemaId === q.schema) && this.#members.every((m) => m.has(r.deviceId));
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}

/** The ids of the devices a registry filter selects (a tag, the groups a caller is limited to), up to 100,000. */
export async function deviceSet(registry: Pick<RegistryService, 'list'>, f: Pick<DeviceFilter, 'tag' | 'within'>): Promise<ReadonlySet<string>> {
  const ids = new Set<string>();
  let after: string | undefined;
  while (ids.size < TAG_MAX_DEVICES) {
    const page = await registry.list({ ...f, limit: 1000, ...(after !== undefined ? { after } : {}) });
    for (const d of page) ids.add(d.id);
    if (page.length < 1000) break;
    after = page[page.length - 1]?.id;
  }
  return ids;
}
