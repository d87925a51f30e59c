/**
 * Runs `task` every `intervalMs`, never two at once: a tick that comes while the previous run
 * is still going is skipped. `task` returns undefined when it has nothing to do this tick, and
 * handles its own errors. `stop()` clears the timer and waits for the run in flight.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly task: () => Promise<void> | undefined,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.inFlight ??= this.task()?.finally(() => {
        this.inFlight = undefined;
      });
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inFlight;
  }
}
