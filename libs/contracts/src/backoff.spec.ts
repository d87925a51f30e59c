import { backoffDelay, pause, retry, type RetryFailure } from './backoff';

// The one backoff of the apps and the guard: growth, cap, jitter bounds, and retrying that a
// shutdown (an abort) ends at once, mid-wait included.

const attempts = [1, 2, 3, 4, 5, 6, 10, 31, 60, 1_000];

describe('backoffDelay', () => {
  it('doubles from initialMs up to maxMs, and stays there', () => {
    const options = { initialMs: 100, maxMs: 1_000, jitter: 'none' } as const;
    expect(attempts.map((n) => backoffDelay(n, options))).toEqual([
      100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000,
    ]);
  });

  it('never overflows, however many attempts', () => {
    const options = { initialMs: 1, maxMs: Number.MAX_SAFE_INTEGER, jitter: 'none' } as const;
    expect(backoffDelay(31, options)).toBe(2 ** 30);
    expect(backoffDelay(10_000, options)).toBe(2 ** 30);
    expect(backoffDelay(Infinity, { ...options, maxMs: 5 })).toBe(5);
  });

  it('treats attempts below 1 as the first', () => {
    expect(backoffDelay(0, { initialMs: 100, maxMs: 1_000, jitter: 'none' })).toBe(100);
  });

  it('equal jitter (the default): between half the ceiling and the ceiling', () => {
    const at = (random: number) =>
      attempts.map((n) => backoffDelay(n, { initialMs: 100, maxMs: 1_000, random: () => random }));
    expect(at(0)).toEqual([50, 100, 200, 400, 500, 500, 500, 500, 500, 500]);
    expect(at(0.999_999)).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000]);
  });

  it('full jitter: between zero and the ceiling', () => {
    const at = (random: number) =>
      attempts.map((n) =>
        backoffDelay(n, { initialMs: 100, maxMs: 1_000, jitter: 'full', random: () => random }),
      );
    expect(at(0)).toEqual(attempts.map(() => 0));
    expect(at(0.5)).toEqual([50, 100, 200, 400, 500, 500, 500, 500, 500, 500]);
    expect(at(0.999_999)).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000]);
  });

  it('with Math.random, every wait is within its bounds', () => {
    for (let i = 0; i < 2_000; i += 1) {
      const n = 1 + (i % 12);
      const ceiling = Math.min(5_000, 250 * 2 ** (n - 1));
      const equal = backoffDelay(n, { initialMs: 250, maxMs: 5_000 });
      const full = backoffDelay(n, { initialMs: 250, maxMs: 5_000, jitter: 'full' });
      expect(equal).toBeGreaterThanOrEqual(ceiling / 2);
      expect(equal).toBeLessThanOrEqual(ceiling);
      expect(full).toBeGreaterThanOrEqual(0);
      expect(full).toBeLessThanOrEqual(ceiling);
    }
  });
});

describe('pause', () => {
  it('waits the whole time when not aborted', async () => {
    const started = Date.now();
    await expect(pause(30, new AbortController().signal)).resolves.toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('ends at once when aborted, before or during the wait', async () => {
    const before = new AbortController();
    before.abort();
    await expect(pause(60_000, before.signal)).resolves.toBe(false);

    const during = new AbortController();
    const started = Date.now();
    setTimeout(() => {
      during.abort();
    }, 20);
    await expect(pause(60_000, during.signal)).resolves.toBe(false);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('retry', () => {
  /** Fails `failures` times, then answers `done`; records each attempt's number. */
  const flaky = (failures: number) => {
    const calls: number[] = [];
    const attempt = (n: number) => {
      calls.push(n);
      return calls.length > failures
        ? Promise.resolve('done')
        : Promise.reject(new Error(`failure ${calls.length}`));
    };
    return { calls, attempt };
  };
  const quick = { initialMs: 1, maxMs: 4 };

  it('retries until the attempt succeeds, numbering attempts, waiting the backoff between', async () => {
    const { calls, attempt } = flaky(4);
    const failures: RetryFailure[] = [];
    const result = await retry(attempt, {
      initialMs: 1,
      maxMs: 4,
      jitter: 'none',
      onRetry: (failure) => failures.push(failure),
    });
    expect(result).toBe('done');
    expect(calls).toEqual([1, 2, 3, 4, 5]);
    expect(failures.map(({ attempt: n, delayMs, error }) => [n, delayMs, String(error)])).toEqual([
      [1, 1, 'Error: failure 1'],
      [2, 2, 'Error: failure 2'],
      [3, 4, 'Error: failure 3'],
      [4, 4, 'Error: failure 4'],
    ]);
  });

  it('gives up with the last error after `retries` retries', async () => {
    const { calls, attempt } = flaky(10);
    await expect(retry(attempt, { ...quick, retries: 2 })).rejects.toThrow('failure 3');
    expect(calls).toEqual([1, 2, 3]);

    const once = flaky(10);
    await expect(retry(once.attempt, { ...quick, retries: 0 })).rejects.toThrow('failure 1');
    expect(once.calls).toEqual([1]);
  });

  it('throws at once a failure that is not retryable', async () => {
    const { calls, attempt } = flaky(10);
    const onRetry = jest.fn();
    await expect(
      retry(attempt, {
        ...quick,
        retryable: (error) => !String(error).includes('failure 2'),
        onRetry,
      }),
    ).rejects.toThrow('failure 2');
    expect(calls).toEqual([1, 2]);
    expect(onRetry).toHaveBeenCalledTimes(1);
  });

  it('an abort ends a long wait at once, with the last error and no further attempt', async () => {
    const { calls, attempt } = flaky(Infinity);
    const stop = new AbortController();
    const started = Date.now();
    const retrying = retry(attempt, {
      initialMs: 60_000,
      maxMs: 60_000,
      signal: stop.signal,
      onRetry: () => {
        setTimeout(() => {
          stop.abort();
        }, 20);
      },
    });
    await expect(retrying).rejects.toThrow('failure 1');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(calls).toEqual([1]);
  });

  it('does not retry an attempt that failed after the abort, nor call onRetry for it', async () => {
    const stop = new AbortController();
    const onRetry = jest.fn();
    const attempt = jest.fn(() => {
      stop.abort();
      return Promise.reject(new Error('failed while stopping'));
    });
    await expect(retry(attempt, { ...quick, signal: stop.signal, onRetry })).rejects.toThrow(
      'failed while stopping',
    );
    expect(attempt).toHaveBeenCalledTimes(1);
    expect(onRetry).not.toHaveBeenCalled();
  });

  it('still makes the first attempt when already aborted (an aborted caller may finish its step)', async () => {
    const stop = new AbortController();
    stop.abort();
    await expect(retry(() => Promise.resolve(7), { ...quick, signal: stop.signal })).resolves.toBe(
      7,
    );
    const { calls, attempt } = flaky(1);
    await expect(retry(attempt, { ...quick, signal: stop.signal })).rejects.toThrow('failure 1');
    expect(calls).toEqual([1]);
  });
});
