/**
 * The records as a JSON file the lab rewrites: the lab (writer) replaces it atomically
 * (writeRecordsFile: a temporary file renamed over it), the DNS server process (reader) follows it.
 * The reader watches the file's directory (a rename replaces the inode, so watching the file itself
 * would lose it) and also re-reads on a timer when the file's identity, size or mtime changed, in
 * case an event is missed. A file that does not parse or validate is logged and the previous records
 * stay: nothing is half-applied. A missing file means no records yet.
 */
import { randomBytes } from 'node:crypto';
import { type FSWatcher, readFileSync, renameSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DnsArgumentError } from './errors.js';
import { type DnsRecordSource, type DnsRecords, parseDnsRecords } from './records.js';

export interface RecordsFileSource extends DnsRecordSource {
  readonly path: string;
  /** Re-reads now; true when new records were taken. */
  reload(): boolean;
  /** Why the last read was refused (undefined after a good one). */
  readonly lastError: string | undefined;
  /** Resolves after the next change is taken (tests, the CLI's first load message). */
  changed(): Promise<DnsRecords>;
  close(): void;
}

export interface RecordsFileOptions {
  /** How often the file's stat is compared, in case a watch event was missed (default 1000 ms). */
  pollMs?: number;
  log?: (line: string) => void;
}

const EMPTY: DnsRecords = { services: [], pods: [] };

/** Reads and validates a records file; throws naming the file and the field. */
export function readRecordsFile(path: string): DnsRecords {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY;
    throw new DnsArgumentError(path, `cannot read: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DnsArgumentError(path, `not JSON: ${(e as Error).message}`);
  }
  return parseDnsRecords(json, path);
}

/** Validates and writes the records atomically (temporary file in the same directory, then rename). */
export function writeRecordsFile(path: string, records: DnsRecords): void {
  const valid = parseDnsRecords(records);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, `${JSON.stringify(valid, null, 2)}\n`);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Follows a records file. A file that is there but invalid at start throws; later it only logs. */
export function watchRecordsFile(path: string, options: RecordsFileOptions = {}): RecordsFileSource {
  let snapshot = readRecordsFile(path);
  let lastError: string | undefined;
  let stamp = stampOf(path);
  let waiters: ((r: DnsRecords) => void)[] = [];
  const log = options.log;

  const reload = (): boolean => {
    stamp = stampOf(path);
    try {
      const next = readRecordsFile(path);
      const changed = JSON.stringify(next) !== JSON.stringify(snapshot);
      lastError = undefined;
      if (!changed) return false;
      snapshot = next;
      log?.(`records: ${next.services.length} services, ${next.pods.length} pods from ${path}`);
      const w = waiters;
      waiters = [];
      for (const f of w) f(next);
      return true;
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== lastError) log?.(`records: kept the previous records: ${msg}`);
      lastError = msg;
      return false;
    }
  };

  let debounce: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
      if (name !== null && name !== basename(path)) return;
      clearTimeout(debounce);
      debounce = setTimeout(reload, 10);
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    // No watch on this file system: the timer alone follows the file.
  }
  const timer = setInterval(() => {
    if (stampOf(path) !== stamp) reload();
  }, options.pollMs ?? 1000);
  timer.unref();

  return {
    path,
    current: () => snapshot,
    reload,
    get lastError() {
      return lastError;
    },
    changed: () => new Promise((resolve) => waiters.push(resolve)),
    close: () => {
      clearInterval(timer);
      clearTimeout(debounce);
      watcher?.close();
    },
  };
}

function stampOf(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}
