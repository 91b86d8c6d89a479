// A progress display for `--wait`: pinned flows left on a draining nexthop falling to zero.
// On a terminal, one bar redrawn in place; otherwise a line whenever the count changes (at
// most one every few seconds), so logs stay short.

export class Progress {
  private lastLine = 0;
  private lastValue: number | undefined;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly label: string,
    private readonly total: number,
  ) {}

  update(left: number, elapsedS: number): void {
    const total = Math.max(this.total, left, 1);
    const done = total - left;
    if (this.out.isTTY) {
      const width = 30;
      const fill = Math.round((done / total) * width);
      this.out.write(`\r${this.label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${left} pinned flows left, ${Math.round(elapsedS)} s `);
      return;
    }
    const now = Date.now();
    if (left === this.lastValue || (now - this.lastLine < 5000 && left !== 0)) return;
    this.lastValue = left;
    this.lastLine = now;
    this.out.write(`${this.label}: ${left} pinned flows left (${Math.round((done / total) * 100)}%), ${Math.round(elapsedS)} s\n`);
  }

  end(): void {
    if (this.out.isTTY) this.out.write('\n');
  }
}
