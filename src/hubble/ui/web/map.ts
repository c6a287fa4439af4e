/**
 * The service map in SVG. Layout by elkjs (layered, left to right) in a web worker, so the page
 * keeps drawing while it runs; it runs again only when nodes or edges appear or go (at most once
 * per LAYOUT_MIN_MS), while counts and verdict colours change in place. Pan by dragging, zoom with
 * the wheel or the buttons.
 */

import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import ELK from 'elkjs/lib/elk-api.js';
import type { MapEdge, MapNode, MapView } from '../model.js';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 170;
const NODE_H = 46;
const LAYOUT_MIN_MS = 1000;
const REDRAW_MS = 500;

export interface MapHandlers {
  onNode(id: string): void;
  onEdge(id: string): void;
  onFirstDraw(): void;
}

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** DOM writes only when the value changes (redraws touch every item of a busy map). */
function setAttr(e: Element, name: string, value: string): void {
  if (e.getAttribute(name) !== value) e.setAttribute(name, value);
}
function setText(e: Element | undefined, text: string): void {
  if (e && e.textContent !== text) e.textContent = text;
}

function edgeLabel(e: MapEdge): string {
  const proto = e.protocol.startsWith('ICMP') ? `${e.protocol} type ${e.port}` : `${e.protocol}/${e.port}`;
  const counts =
    e.verdict === 'mixed' ? `${e.forwarded}✓ ${e.dropped}✗` : e.dropped > 0 ? `${e.dropped}✗` : `${e.flows}`;
  return `${proto} · ${counts}`;
}

function httpLabel(e: MapEdge): string {
  const top = Object.entries(e.http)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 2)
    .map(([k, n]) => `${k} ×${n}`);
  const codes = Object.keys(e.httpCodes).sort().join(',');
  return top.length ? `${top.join(', ')}${codes ? ` [${codes}]` : ''}` : '';
}

/** 6 px a character at the labels' 10 px font. */
function labelSize(e: MapEdge): { width: number; height: number } {
  return { width: 6 * Math.max(edgeLabel(e).length, httpLabel(e).length), height: httpLabel(e) ? 26 : 13 };
}

/** A label's size in coarse steps: a change of step is worth a new layout, a digit more is not. */
function labelShape(e: MapEdge): string {
  const { width, height } = labelSize(e);
  return `${Math.ceil(width / 60)}:${height}`;
}

export class ServiceMapView {
  readonly nodes = new Map<string, MapNode>();
  readonly edges = new Map<string, MapEdge>();
  private readonly elk = new ELK({ workerUrl: '/assets/elk-worker.js' });
  private readonly viewport: SVGGElement;
  private readonly nodeEls = new Map<string, SVGGElement>();
  private readonly edgeEls = new Map<string, SVGGElement>();
  private topologyKey = '';
  private laidOut = '';
  private layoutRunning = false;
  private layoutTimer: number | undefined;
  private lastLayout = 0;
  private drawn = false;
  private readonly labelShapes = new Map<string, string>();
  private shapeChanges = 0;
  private readonly dirtyNodes = new Set<string>();
  private readonly dirtyEdges = new Set<string>();
  private redrawTimer: number | undefined;
  private tx = 0;
  private ty = 0;
  private scale = 1;
  /** The reader panned or zoomed: new layouts keep the view. */
  private moved = false;
  private bounds = { w: 1, h: 1 };
  namespace = '';
  selectedNode: string | undefined;
  selectedEdge: string | undefined;

  constructor(
    private readonly svg: SVGSVGElement,
    private readonly handlers: MapHandlers,
  ) {
    this.viewport = svg.querySelector('#viewport') as SVGGElement;
    const defs = el('defs');
    for (const v of ['forwarded', 'dropped', 'mixed', 'other']) {
      const m = el('marker', {
        id: `arrow-${v}`,
        viewBox: '0 0 10 10',
        refX: 9,
        refY: 5,
        markerWidth: 7,
        markerHeight: 7,
        orient: 'auto-start-reverse',
      });
      m.append(el('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }));
      const g = el('g', { class: `edge ${v}` });
      g.append(m);
      defs.append(g);
    }
    svg.prepend(defs);
    this.panZoom();
  }

  /** Replaces the map (another namespace). */
  reset(view: MapView): void {
    this.nodes.clear();
    this.edges.clear();
    this.viewport.replaceChildren();
    this.nodeEls.clear();
    this.edgeEls.clear();
    this.laidOut = '';
    this.drawn = false;
    this.labelShapes.clear();
    this.moved = false;
    this.dirtyNodes.clear();
    this.dirtyEdges.clear();
    this.namespace = view.namespace;
    this.merge(view);
  }

  /**
   * Merges a view or a delta: new items wait for a layout; known ones are redrawn in place, at most
   * once per REDRAW_MS whatever the rate of deltas (only what changed since the last redraw).
   */
  merge(view: MapView): void {
    for (const n of view.nodes) {
      this.nodes.set(n.id, n);
      this.dirtyNodes.add(n.id);
    }
    for (const e of view.edges) {
      this.edges.set(e.id, e);
      this.dirtyEdges.add(e.id);
      // a label that outgrew its place (an HTTP line, more digits) asks for a new layout
      const shape = labelShape(e);
      if (this.labelShapes.get(e.id) !== shape) {
        this.labelShapes.set(e.id, shape);
        this.shapeChanges++;
      }
    }
    this.topologyKey = `${this.nodes.size}:${this.edges.size}:${this.shapeChanges}`;
    if (this.topologyKey !== this.laidOut) this.scheduleLayout();
    if (this.redrawTimer === undefined) {
      this.redrawTimer = window.setTimeout(() => {
        this.redrawTimer = undefined;
        requestAnimationFrame(() => this.redraw());
      }, REDRAW_MS);
    }
  }

  private redraw(): void {
    for (const id of this.dirtyNodes) this.updateNode(this.nodes.get(id)!);
    for (const id of this.dirtyEdges) this.updateEdge(this.edges.get(id)!);
    this.dirtyNodes.clear();
    this.dirtyEdges.clear();
  }

  select(node: string | undefined, edge: string | undefined): void {
    this.selectedNode = node;
    this.selectedEdge = edge;
    for (const [id, g] of this.nodeEls) g.classList.toggle('selected', id === node);
    for (const [id, g] of this.edgeEls) g.classList.toggle('selected', id === edge);
  }

  private scheduleLayout(): void {
    if (this.layoutTimer !== undefined || this.layoutRunning) return;
    const wait = Math.max(0, this.lastLayout + LAYOUT_MIN_MS - performance.now());
    this.layoutTimer = window.setTimeout(
      () => {
        this.layoutTimer = undefined;
        void this.layout();
      },
      this.drawn ? wait : 0,
    );
  }

  private async layout(): Promise<void> {
    this.layoutRunning = true;
    const key = this.topologyKey;
    const nodes = [...this.nodes.values()];
    const edges = [...this.edges.values()];
    const graph: ElkNode = {
      id: 'root',
      layoutOptions: {
        'elk.algorithm': 'layered',
        'elk.direction': 'RIGHT',
        'elk.edgeRouting': 'POLYLINE',
        'elk.layered.spacing.nodeNodeBetweenLayers': '110',
        'elk.spacing.nodeNode': '36',
        'elk.spacing.edgeEdge': '14',
        'elk.spacing.edgeLabel': '4',
        'elk.edgeLabels.inline': 'false',
        'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
        // Brandes-Köpf placement and fewer crossing-minimisation passes: about half the time of
        // the defaults on 100 workloads, with the same layering
        'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
        'elk.layered.thoroughness': '3',
      },
      children: nodes.map((n) => ({ id: n.id, width: NODE_W, height: NODE_H })),
      edges: edges.map(
        (e): ElkExtendedEdge => ({
          id: e.id,
          sources: [e.source],
          targets: [e.target],
          labels: [{ id: `${e.id}#l`, text: edgeLabel(e), ...labelSize(e) }],
        }),
      ),
    };
    try {
      const out = await this.elk.layout(graph);
      this.draw(out);
      this.laidOut = key;
    } catch (err) {
      console.error('map layout failed', err);
    } finally {
      this.layoutRunning = false;
      this.lastLayout = performance.now();
      if (this.topologyKey !== this.laidOut) this.scheduleLayout();
    }
  }

  private draw(g: ElkNode): void {
    const edgeLayer = el('g', { class: 'edges' });
    const nodeLayer = el('g', { class: 'nodes' });
    this.nodeEls.clear();
    this.edgeEls.clear();
    for (const e of g.edges ?? []) {
      const m = this.edges.get(e.id);
      if (!m) continue;
      const sec = e.sections?.[0];
      if (!sec) continue;
      const pts = [sec.startPoint, ...(sec.bendPoints ?? []), sec.endPoint];
      const d = pts.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
      const ge = el('g', { 'data-edge': m.id, 'data-source': m.source, 'data-target': m.target });
      ge.append(el('path', { d, class: 'hit' }), el('path', { d, class: 'line' }));
      const lab = e.labels?.[0];
      const t = el('text', { x: (lab?.x ?? pts[0]!.x) + 2, y: (lab?.y ?? pts[0]!.y) + 10, class: 'count' });
      const l7 = el('text', { x: (lab?.x ?? pts[0]!.x) + 2, y: (lab?.y ?? pts[0]!.y) + 23, class: 'l7' });
      ge.append(t, l7);
      ge.addEventListener('click', (ev) => {
        ev.stopPropagation();
        this.handlers.onEdge(m.id);
      });
      edgeLayer.append(ge);
      this.edgeEls.set(m.id, ge);
      this.updateEdge(m);
    }
    for (const c of g.children ?? []) {
      const n = this.nodes.get(c.id);
      if (!n) continue;
      const gn = el('g', { 'data-node': n.id, transform: `translate(${c.x ?? 0},${c.y ?? 0})` });
      gn.append(
        el('rect', { width: NODE_W, height: NODE_H }),
        el('text', { x: 10, y: 18, class: 'name' }),
        el('text', { x: 10, y: 34, class: 'sub' }),
      );
      gn.addEventListener('click', (ev) => {
        ev.stopPropagation();
        this.handlers.onNode(n.id);
      });
      nodeLayer.append(gn);
      this.nodeEls.set(n.id, gn);
      this.updateNode(n);
    }
    this.viewport.replaceChildren(edgeLayer, nodeLayer);
    this.bounds = { w: g.width ?? 1, h: g.height ?? 1 };
    this.select(this.selectedNode, this.selectedEdge);
    // a new layout is fitted to the pane until the reader pans or zooms
    if (!this.moved) this.fit();
    if (!this.drawn) {
      this.drawn = true;
      this.handlers.onFirstDraw();
    }
  }

  private updateNode(n: MapNode): void {
    const g = this.nodeEls.get(n.id);
    if (!g) return;
    const foreign = n.kind === 'workload' && this.namespace !== '' && n.namespace !== this.namespace;
    setAttr(
      g,
      'class',
      `node ${n.kind}${foreign ? ' foreign' : ''}${n.id === this.selectedNode ? ' selected' : ''}`,
    );
    setAttr(g, 'data-name', n.name);
    const [name, sub] = g.querySelectorAll('text');
    setText(name, n.name.length > 24 ? `${n.name.slice(0, 23)}…` : n.name);
    const what = n.kind === 'workload' ? (n.namespace ?? '') : n.kind;
    setText(sub, `${what}${n.pods.length > 1 ? ` · ${n.pods.length} pods` : ''} · ${n.flows} flows`);
  }

  private updateEdge(e: MapEdge): void {
    const g = this.edgeEls.get(e.id);
    if (!g) return;
    setAttr(g, 'class', `edge ${e.verdict}${e.id === this.selectedEdge ? ' selected' : ''}`);
    setAttr(g, 'data-verdict', e.verdict);
    const line = g.querySelector('path.line');
    if (line) setAttr(line, 'marker-end', `url(#arrow-${e.verdict})`);
    const [count, l7] = g.querySelectorAll('text');
    setText(count, edgeLabel(e));
    setText(l7, httpLabel(e));
  }

  // ---- pan and zoom ----

  private apply(): void {
    this.viewport.setAttribute('transform', `translate(${this.tx},${this.ty}) scale(${this.scale})`);
  }

  fit(): void {
    this.moved = false;
    const r = this.svg.getBoundingClientRect();
    const pad = 24;
    this.scale = Math.min(1.5, (r.width - 2 * pad) / this.bounds.w, (r.height - 2 * pad) / this.bounds.h);
    if (!(this.scale > 0)) this.scale = 1;
    this.tx = (r.width - this.bounds.w * this.scale) / 2;
    this.ty = (r.height - this.bounds.h * this.scale) / 2;
    this.apply();
  }

  zoom(factor: number, cx?: number, cy?: number): void {
    this.moved = true;
    const r = this.svg.getBoundingClientRect();
    const x = cx ?? r.width / 2;
    const y = cy ?? r.height / 2;
    const s = Math.min(4, Math.max(0.1, this.scale * factor));
    this.tx = x - ((x - this.tx) * s) / this.scale;
    this.ty = y - ((y - this.ty) * s) / this.scale;
    this.scale = s;
    this.apply();
  }

  private panZoom(): void {
    let drag: { x: number; y: number; tx: number; ty: number } | undefined;
    this.svg.addEventListener('pointerdown', (ev) => {
      if ((ev.target as Element).closest('[data-node],[data-edge]')) return;
      drag = { x: ev.clientX, y: ev.clientY, tx: this.tx, ty: this.ty };
      this.svg.classList.add('dragging');
      this.svg.setPointerCapture(ev.pointerId);
    });
    this.svg.addEventListener('pointermove', (ev) => {
      if (!drag) return;
      this.moved = true;
      this.tx = drag.tx + ev.clientX - drag.x;
      this.ty = drag.ty + ev.clientY - drag.y;
      this.apply();
    });
    const end = () => {
      drag = undefined;
      this.svg.classList.remove('dragging');
    };
    this.svg.addEventListener('pointerup', end);
    this.svg.addEventListener('pointercancel', end);
    this.svg.addEventListener(
      'wheel',
      (ev) => {
        ev.preventDefault();
        const r = this.svg.getBoundingClientRect();
        this.zoom(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX - r.left, ev.clientY - r.top);
      },
      { passive: false },
    );
  }
}
