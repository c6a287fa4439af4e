/**
 * Cells and the hive that runs them. The agent is a list of cells: each names what it needs and
 * what it provides (typed tokens), builds its part from those, and may start and stop. The hive
 * orders cells by their needs, builds them, starts them in that order and stops them in reverse,
 * so adding a subsystem means adding a cell, not editing a central class. Pure: no I/O.
 */
import { CiliumTsError } from '../common/errors.js';

/** A typed name for something a cell provides. */
export interface Token<T> {
  readonly name: string;
  /** Phantom: carries T for the type checker only. */
  readonly _type?: T;
}

export function token<T>(name: string): Token<T> {
  return { name };
}

/** What a cell's build step returns: the value it provides, its lifecycle and extras. */
export type CellInstance<P, X> = {
  provide?: P;
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
} & X;

export interface Cell<P = unknown, X = object> {
  readonly name: string;
  readonly needs: readonly Token<unknown>[];
  readonly provides?: Token<P>;
  /** Builds the cell; `get` returns a needed token's value (only tokens listed in needs). */
  build(get: <T>(t: Token<T>) => T): CellInstance<P, X>;
}

export function cell<P, X = object>(c: Cell<P, X>): Cell<P, X> {
  return c;
}

export class HiveError extends CiliumTsError {
  override readonly name = 'HiveError';
}

export interface Logger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class Hive<X = object> {
  readonly #cells: Cell<unknown, X>[];
  readonly #values = new Map<string, unknown>();
  readonly #built: { cell: Cell<unknown, X>; inst: CellInstance<unknown, X> }[] = [];
  #started: { cell: Cell<unknown, X>; inst: CellInstance<unknown, X> }[] = [];

  /** `supplied` are values given from outside (configuration, logger). */
  constructor(
    cells: readonly Cell<unknown, X>[],
    supplied: readonly [Token<unknown>, unknown][] = [],
    private readonly log?: Logger,
  ) {
    for (const [t, v] of supplied) this.#values.set(t.name, v);
    this.#cells = order(cells, new Set(supplied.map(([t]) => t.name)));
  }

  /** Cells in start order. */
  get cells(): readonly Cell<unknown, X>[] {
    return this.#cells;
  }

  /** Builds every cell (in dependency order); nothing is started yet. */
  populate(): this {
    if (this.#built.length) return this;
    for (const c of this.#cells) {
      const allowed = new Set(c.needs.map((t) => t.name));
      const get = <T>(t: Token<T>): T => {
        if (!allowed.has(t.name)) throw new HiveError(`cell ${c.name} uses ${t.name} without declaring it`);
        if (!this.#values.has(t.name)) throw new HiveError(`cell ${c.name}: nothing provides ${t.name}`);
        return this.#values.get(t.name) as T;
      };
      const inst = c.build(get);
      if (c.provides) this.#values.set(c.provides.name, inst.provide);
      this.#built.push({ cell: c, inst });
    }
    return this;
  }

  /** The value a token resolved to (after populate). */
  get<T>(t: Token<T>): T {
    if (!this.#values.has(t.name)) throw new HiveError(`nothing provides ${t.name}`);
    return this.#values.get(t.name) as T;
  }

  /** Built cell instances in start order (for routes, status). */
  instances(): { name: string; inst: CellInstance<unknown, X> }[] {
    return this.#built.map((b) => ({ name: b.cell.name, inst: b.inst }));
  }

  /** Starts cells in order; if one fails, the ones started are stopped in reverse and it throws. */
  async start(): Promise<void> {
    this.populate();
    for (const b of this.#built) {
      const t0 = performance.now();
      try {
        await b.inst.start?.();
      } catch (err) {
        this.log?.error({ cell: b.cell.name, err }, 'cell failed to start');
        await this.stop();
        throw err;
      }
      this.#started.push(b);
      const ms = performance.now() - t0;
      if (ms > 50) this.log?.info({ cell: b.cell.name, ms: +ms.toFixed(1) }, 'cell started');
    }
  }

  /** Stops started cells in reverse order; every cell is stopped even if another fails. */
  async stop(): Promise<void> {
    const started = this.#started;
    this.#started = [];
    let first: unknown;
    for (const b of started.reverse()) {
      try {
        await b.inst.stop?.();
      } catch (err) {
        this.log?.error({ cell: b.cell.name, err }, 'cell failed to stop');
        first ??= err;
      }
    }
    if (first) throw first;
  }
}

/** Topological order by needs → provides; stable (declaration order among independents). */
function order<X>(cells: readonly Cell<unknown, X>[], supplied: ReadonlySet<string>): Cell<unknown, X>[] {
  const provider = new Map<string, Cell<unknown, X>>();
  for (const c of cells) {
    if (!c.provides) continue;
    if (provider.has(c.provides.name) || supplied.has(c.provides.name))
      throw new HiveError(`${c.provides.name} is provided twice (cell ${c.name})`);
    provider.set(c.provides.name, c);
  }
  const out: Cell<unknown, X>[] = [];
  const state = new Map<Cell<unknown, X>, 'visiting' | 'done'>();
  const visit = (c: Cell<unknown, X>, path: string[]) => {
    const s = state.get(c);
    if (s === 'done') return;
    if (s === 'visiting') throw new HiveError(`dependency cycle: ${[...path, c.name].join(' → ')}`);
    state.set(c, 'visiting');
    for (const t of c.needs) {
      if (supplied.has(t.name)) continue;
      const p = provider.get(t.name);
      if (!p) throw new HiveError(`cell ${c.name} needs ${t.name}, which no cell provides`);
      visit(p, [...path, c.name]);
    }
    state.set(c, 'done');
    out.push(c);
  };
  for (const c of cells) visit(c, []);
  return out;
}
