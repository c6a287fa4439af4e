/**
 * The flows table, virtualised: rows have one height, a spacer gives the scroll height, and only
 * the rows in view (plus a margin) exist in the DOM, so 10,000 rows cost what 40 do. Newest first;
 * at most `capacity` rows are kept (the oldest go). Redraws are coalesced into one per frame.
 */
import type { FlowRow } from '../model.js';

const ROW_H = 22;
const MARGIN = 10;

function time(t: string): string {
  // RFC 3339 → HH:MM:SS.mmm
  const m = /T(\d\d:\d\d:\d\d)(\.\d{0,3})?/.exec(t);
  return m ? `${m[1]}${(m[2] ?? '.').padEnd(4, '0')}` : t;
}

function fillRow(div: HTMLElement, r: FlowRow): void {
  div.dataset.seq = String(r.seq);
  div.dataset.verdict = r.verdict;
  div.dataset.source = r.sourceNode;
  div.dataset.destination = r.destinationNode;
  const port = r.protocol ? `${r.port}/${r.protocol}` : '';
  const cells = [
    time(r.time),
    r.sourcePod && r.sourcePod !== r.source ? `${r.source} (${r.sourcePod})` : r.source,
    r.destinationPod && r.destinationPod !== r.destination
      ? `${r.destination} (${r.destinationPod})`
      : r.destination,
    `${port}${r.reply ? ' ↩' : ''}`,
    r.l7,
    r.verdict,
    r.dropReason,
  ];
  const spans = div.children;
  for (let j = 0; j < cells.length; j++) spans[j]!.textContent = cells[j]!;
  spans[5]!.className = r.verdict;
}

export class FlowTable {
  rows: FlowRow[] = [];
  readonly capacity = 10_000;
  private scheduled = false;

  constructor(
    private readonly scroller: HTMLElement,
    private readonly spacer: HTMLElement,
    private readonly body: HTMLElement,
    private readonly onRow: (row: FlowRow) => void,
  ) {
    scroller.addEventListener('scroll', () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(scroller);
    body.addEventListener('click', (ev) => {
      const el = (ev.target as HTMLElement).closest<HTMLElement>('.row');
      const seq = Number(el?.dataset.seq);
      const row = this.rows.find((r) => r.seq === seq);
      if (row) this.onRow(row);
    });
  }

  replace(rows: FlowRow[]): void {
    this.rows = rows.slice(-this.capacity);
    this.scroller.scrollTop = 0;
    this.schedule();
  }

  append(rows: FlowRow[]): void {
    if (rows.length === 0) return;
    const atTop = this.scroller.scrollTop < ROW_H;
    this.rows.push(...rows);
    if (this.rows.length > this.capacity) this.rows.splice(0, this.rows.length - this.capacity);
    // a reader scrolled down keeps looking at the same rows
    if (!atTop) this.scroller.scrollTop += rows.length * ROW_H;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.render();
    });
  }

  private render(): void {
    const n = this.rows.length;
    this.spacer.style.height = `${n * ROW_H}px`;
    const top = this.scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_H) - MARGIN);
    const last = Math.min(n, Math.ceil((top + this.scroller.clientHeight) / ROW_H) + MARGIN);
    this.body.style.transform = `translateY(${first * ROW_H}px)`;
    // Row elements are reused: a row whose flow did not change is not touched.
    const count = Math.max(0, last - first);
    while (this.body.children.length > count) this.body.lastElementChild!.remove();
    for (let k = 0; k < count; k++) {
      const r = this.rows[n - 1 - (first + k)]!;
      let div = this.body.children[k] as HTMLElement | undefined;
      if (!div) {
        div = document.createElement('div');
        div.className = 'row';
        for (let j = 0; j < 7; j++) div.append(document.createElement('span'));
        this.body.append(div);
      }
      if (div.dataset.seq === String(r.seq)) continue;
      fillRow(div, r);
    }
  }
}
