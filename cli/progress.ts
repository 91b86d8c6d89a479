// A progress display for `--wait`: connections left on a draining nexthop falling to zero,
// with the server's estimate (the earliest the pins can all be gone if none sends again).
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

  update(left: number, elapsedS: number, estimateS: number | null = null, note?: string): void {
    const total = Math.max(this.total, left, 1);
    const done = total - left;
    const est = estimateS === null || left === 0 ? '' : `, at the earliest ${Math.round(estimateS)} s more`;
    const tail = note === undefined ? '' : ` (${note})`;
    if (this.out.isTTY) {
      const width = 30;
      const fill = Math.round((done / total) * width);
      this.out.write(
        `\r${this.label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${left} connections left${est}, ${Math.round(elapsedS)} s${tail} `,
      );
      return;
    }
    const now = Date.now();
    if (left === this.lastValue || (now - this.lastLine < 5000 && left !== 0)) return;
    this.lastValue = left;
    this.lastLine = now;
    this.out.write(
      `${this.label}: ${left} connections left (${Math.round((done / total) * 100)}%)${est}, ${Math.round(elapsedS)} s${tail}\n`,
    );
  }

  end(): void {
    if (this.out.isTTY) this.out.write('\n');
  }
}
