/**
 * The Hubble UI page: namespace picker, service map, flows table and policy view, kept live by the
 * backend's event stream. The view's state (namespace, filters, selected node or edge) lives in
 * the URL, so a view can be shared. Frame times are measured all along (window.__uiStats) and
 * shown in the header.
 */
import type { FlowRow, MapView } from '../model.js';
import { ServiceMapView } from './map.js';
import { FlowTable } from './table.js';

const STATE_KEYS = ['namespace', 'pod', 'verdict', 'protocol', 'label', 'q', 'node', 'edge'] as const;
type State = Partial<Record<(typeof STATE_KEYS)[number], string>>;

interface UiStats {
  frames: number;
  longFrames: number;
  maxFrameMs: number;
  recent: number[];
  firstMapMs?: number;
  firstRowsMs?: number;
  p95(): number;
}

const stats: UiStats = {
  frames: 0,
  longFrames: 0,
  maxFrameMs: 0,
  recent: [],
  p95() {
    const s = [...this.recent].sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length * 0.95)]! : 0;
  },
};
(window as unknown as { __uiStats: UiStats }).__uiStats = stats;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function readState(): State {
  const p = new URLSearchParams(location.search);
  const s: State = {};
  for (const k of STATE_KEYS) {
    const v = p.get(k);
    if (v) s[k] = v;
  }
  return s;
}

let state = readState();

function writeState(): void {
  const p = new URLSearchParams();
  for (const k of STATE_KEYS) if (state[k]) p.set(k, state[k]!);
  history.replaceState(null, '', `${location.pathname}${p.size ? `?${p}` : ''}`);
}

function queryString(extra: Record<string, string | number> = {}): string {
  const p = new URLSearchParams();
  for (const k of STATE_KEYS) if (state[k]) p.set(k, state[k]!);
  for (const [k, v] of Object.entries(extra)) p.set(k, String(v));
  return p.toString();
}

async function getJson<T>(path: string): Promise<T> {
  const r = await fetch(path);
  const body = (await r.json()) as T & { error?: string };
  if (!r.ok) throw new Error(body.error ?? `${path}: HTTP ${r.status}`);
  return body;
}

const map = new ServiceMapView($<HTMLElement>('map') as unknown as SVGSVGElement, {
  onNode: (id) => select(state.node === id ? undefined : id, undefined),
  onEdge: (id) => select(undefined, state.edge === id ? undefined : id),
  onFirstDraw: () => {
    stats.firstMapMs ??= performance.now();
    document.body.dataset.mapReady = '1';
  },
});

const table = new FlowTable($('table'), $('spacer'), $('rows'), (row) => void showDetail(row));
let events: EventSource | undefined;
let paused = false;
let pending: FlowRow[] = [];

// ---- loading ----

async function loadNamespaces(): Promise<void> {
  const { namespaces } = await getJson<{ namespaces: string[] }>('/api/namespaces');
  const sel = $<HTMLSelectElement>('namespace');
  const want = state.namespace ?? (namespaces.includes('default') ? 'default' : (namespaces[0] ?? ''));
  const all = [...new Set([...namespaces, ...(want ? [want] : [])])].sort();
  const current = [...sel.options].map((o) => o.value).join(',');
  if (current !== ['', ...all].join(',')) {
    sel.replaceChildren(new Option('all namespaces', ''), ...all.map((n) => new Option(n, n)));
  }
  if (state.namespace === undefined && want) state.namespace = want;
  sel.value = state.namespace ?? '';
}

/** Loads the map and the table for the current state and (re)opens the event stream. */
async function reload(): Promise<void> {
  writeState();
  events?.close();
  const [view, flows] = await Promise.all([
    getJson<MapView>(`/api/map?namespace=${encodeURIComponent(state.namespace ?? '')}`),
    getJson<{ rows: FlowRow[]; lastSeq: number }>(`/api/flows?${queryString({ limit: table.capacity })}`),
  ]);
  if (map.namespace !== view.namespace || map.nodes.size === 0) map.reset(view);
  else map.merge(view);
  map.select(state.node, state.edge);
  pending = [];
  table.replace(flows.rows);
  stats.firstRowsMs ??= performance.now();
  updateCount();
  showSelection();
  const es = new EventSource(`/api/events?${queryString({ since: flows.lastSeq, version: view.version })}`);
  es.addEventListener('flows', (ev) => {
    const d = JSON.parse((ev as MessageEvent).data) as { rows: FlowRow[]; missed: number };
    if (paused) {
      pending.push(...d.rows);
      if (pending.length > table.capacity) pending.splice(0, pending.length - table.capacity);
    } else table.append(d.rows);
    updateCount();
  });
  es.addEventListener('map', (ev) => map.merge(JSON.parse((ev as MessageEvent).data) as MapView));
  es.addEventListener('status', (ev) => showStatus(JSON.parse((ev as MessageEvent).data)));
  es.onerror = () => showStatus(undefined);
  events = es;
}

function showStatus(
  st: { connected: boolean; source: string; flowsSeen: number; error?: string } | undefined,
) {
  const el = $('status');
  if (!st) {
    el.textContent = 'backend unreachable, retrying…';
    el.classList.add('down');
    return;
  }
  el.classList.toggle('down', !st.connected);
  el.textContent = st.connected
    ? `${st.flowsSeen.toLocaleString()} flows from ${st.source}`
    : `not connected to ${st.source}${st.error ? `: ${st.error}` : ''}`;
}

function updateCount(): void {
  $('count').textContent =
    `${table.rows.length} flows${paused && pending.length ? ` (${pending.length} new)` : ''}`;
  $('pause').textContent = paused ? `Resume${pending.length ? ` (${pending.length})` : ''}` : 'Pause';
}

// ---- selection and policy view ----

function select(node: string | undefined, edge: string | undefined): void {
  if (node) state.node = node;
  else delete state.node;
  if (edge) state.edge = edge;
  else delete state.edge;
  void reload();
}

function showSelection(): void {
  const chip = $('f-selection');
  const what = state.edge ? `edge ${state.edge}` : state.node ? `node ${state.node}` : '';
  chip.hidden = !what;
  chip.textContent = what ? `${what} ✕` : '';
  if (state.edge) void showEdgePolicy(state.edge);
  else if (state.node) void showNodePolicy(state.node);
  else {
    $('side-title').textContent = 'Policy view';
    $('side-body').innerHTML =
      '<p class="muted">Click a node for the policies selecting it, an edge for what policy decides about its traffic.</p>';
  }
}

function h(tag: string, text: string, cls?: string): HTMLElement {
  const e = document.createElement(tag);
  e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

interface PolicyOfNode {
  node: { name: string; namespace?: string; pods: string[]; labels: string[]; identity?: number };
  ingressEnforced: boolean;
  egressEnforced: boolean;
  policies: { ref: string; rules: number[]; document?: unknown }[];
}

async function showNodePolicy(id: string): Promise<void> {
  $('side-title').textContent = `Workload ${id}`;
  const body = $('side-body');
  try {
    const r = await getJson<PolicyOfNode>(`/api/policy/node?id=${encodeURIComponent(id)}`);
    body.replaceChildren(
      h('div', `identity ${r.node.identity ?? '?'} · pods: ${r.node.pods.join(', ') || '-'}`, 'muted'),
      h('div', `labels: ${r.node.labels.join(' ')}`, 'muted'),
      h(
        'p',
        `ingress ${r.ingressEnforced ? 'enforced' : 'not enforced'} · egress ${r.egressEnforced ? 'enforced' : 'not enforced'}`,
      ),
      h('h3', r.policies.length ? 'Policies selecting it' : 'No policy selects it'),
    );
    for (const p of r.policies) {
      body.append(h('div', `${p.ref} (rules ${p.rules.join(', ')})`, 'policy'));
      if (p.document) body.append(h('pre', JSON.stringify(p.document, null, 2)));
    }
  } catch (err) {
    body.replaceChildren(h('p', (err as Error).message, 'muted'));
  }
}

interface EdgeExplanation {
  verdict: string;
  directions: {
    direction: string;
    subject: string;
    verdict: string;
    matches: string[];
    selecting: string[];
  }[];
  change?: string;
  snippet?: string;
}

async function showEdgePolicy(id: string): Promise<void> {
  $('side-title').textContent = 'Edge';
  const body = $('side-body');
  body.replaceChildren(h('div', id, 'muted'));
  try {
    const r = await getJson<EdgeExplanation>(`/api/policy/edge?id=${encodeURIComponent(id)}`);
    body.append(h('p', `Policy now: ${r.verdict}`, `verdict-${r.verdict}`));
    for (const d of r.directions) {
      body.append(h('div', `${d.direction} of ${d.subject}: ${d.verdict}`));
      for (const m of d.matches) body.append(h('div', `  ${m}`, 'muted'));
      if (d.selecting.length) body.append(h('div', `  selected by ${d.selecting.join(', ')}`, 'muted'));
    }
    if (r.change) body.append(h('h3', 'What would have to change'), h('p', r.change, 'change'));
    if (r.snippet) body.append(h('pre', r.snippet, 'snippet'));
  } catch (err) {
    body.append(h('p', (err as Error).message, 'muted'));
  }
}

async function showDetail(row: FlowRow): Promise<void> {
  const pre = $('detail-json');
  try {
    pre.textContent = JSON.stringify(await getJson(`/api/flows/${row.seq}`), null, 2);
  } catch (err) {
    pre.textContent = `${(err as Error).message}\n\n${JSON.stringify(row, null, 2)}`;
  }
  $<HTMLDialogElement>('detail').showModal();
}

// ---- controls ----

const FILTER_INPUTS = {
  pod: 'f-pod',
  verdict: 'f-verdict',
  protocol: 'f-protocol',
  label: 'f-label',
  q: 'f-q',
} as const;

function fillFilters(): void {
  for (const [k, id] of Object.entries(FILTER_INPUTS)) {
    $<HTMLInputElement>(id).value = state[k as keyof State] ?? '';
  }
}

let filterTimer: number | undefined;
for (const [k, id] of Object.entries(FILTER_INPUTS)) {
  const input = $<HTMLInputElement>(id);
  const apply = () => {
    const v = input.value.trim();
    if (v) state[k as keyof State] = v;
    else delete state[k as keyof State];
    window.clearTimeout(filterTimer);
    filterTimer = window.setTimeout(() => void reload().catch(showError), 200);
  };
  input.addEventListener(input.tagName === 'SELECT' ? 'change' : 'input', apply);
}
$('filters').addEventListener('submit', (ev) => ev.preventDefault());
$('clear').addEventListener('click', () => {
  state = state.namespace ? { namespace: state.namespace } : {};
  fillFilters();
  void reload().catch(showError);
});
$('f-selection').addEventListener('click', () => select(undefined, undefined));
$('pause').addEventListener('click', () => {
  paused = !paused;
  if (!paused && pending.length) {
    table.append(pending);
    pending = [];
  }
  updateCount();
});
$<HTMLSelectElement>('namespace').addEventListener('change', (ev) => {
  const v = (ev.target as HTMLSelectElement).value;
  state = { ...state, namespace: v };
  delete state.node;
  delete state.edge;
  map.namespace = '\0';
  void reload().catch(showError);
});
$('fit').addEventListener('click', () => map.fit());
$('zoom-in').addEventListener('click', () => map.zoom(1.25));
$('zoom-out').addEventListener('click', () => map.zoom(0.8));

function showError(err: unknown): void {
  $('status').textContent = (err as Error).message;
  $('status').classList.add('down');
}

// ---- frame time ----

let lastFrame = performance.now();
function frame(now: number): void {
  const dt = now - lastFrame;
  lastFrame = now;
  stats.frames++;
  if (dt > 50) stats.longFrames++;
  if (dt > stats.maxFrameMs) stats.maxFrameMs = dt;
  stats.recent.push(dt);
  if (stats.recent.length > 600) stats.recent.shift();
  if (stats.frames % 60 === 0) $('perf').textContent = `frame p95 ${stats.p95().toFixed(1)} ms`;
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

// ---- start ----

async function start(): Promise<void> {
  await loadNamespaces();
  fillFilters();
  await reload();
  // namespaces appear as flows arrive
  window.setInterval(() => void loadNamespaces().catch(() => {}), 5000);
}
start().catch(showError);
