import { useEffect, useState } from 'preact/hooks';
import { formatTime } from './format';
import type { Revocation } from './reasons';

/** Most events the feed keeps on the page. */
const KEEP = 200;
/** Seconds the chart spans. */
const SPAN = 60;

interface Second {
  at: number;
  count: number;
  maxDelayMs: number;
}

/** Revocations as the gateway applies them (`GET /bff/events`), newest first, with a chart. */
export function LiveFeed() {
  const [events, setEvents] = useState<Revocation[]>([]);
  const [state, setState] = useState<'connecting' | 'live' | 'reconnecting'>('connecting');
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    const source = new EventSource('/bff/events');
    source.onopen = () => {
      setState('live');
    };
    source.onerror = () => {
      setState('reconnecting');
    };
    source.addEventListener('revocation', (message) => {
      const event = JSON.parse((message as MessageEvent<string>).data) as Revocation;
      setEvents((list) => [event, ...list].slice(0, KEEP));
    });
    const tick = setInterval(() => {
      setNow(Date.now());
    }, 1_000);
    return () => {
      source.close();
      clearInterval(tick);
    };
  }, []);

  return (
    <section aria-labelledby="feed-title">
      <h2 id="feed-title">Live revocations</h2>
      <p class="status">
        Feed: <span data-testid="feed-state">{state}</span>
      </p>
      <Chart seconds={perSecond(events, now)} />
      <div class="table-wrap">
        <table data-testid="feed">
          <caption class="visually-hidden">
            Revocations applied by the gateway, newest first
          </caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">User</th>
              <th scope="col">Session</th>
              <th scope="col">By</th>
              <th scope="col">Reason</th>
              <th scope="col">Applied after</th>
            </tr>
          </thead>
          <tbody>
            {events.map((event, i) => (
              <tr key={`${event.at}-${event.session_id ?? event.user_id}-${i}`}>
                <td>{formatTime(event.at)}</td>
                <td>{event.user_id}</td>
                <td>{event.session_id ?? 'all sessions'}</td>
                <td>{event.initiating_entity}</td>
                <td>{event.reason}</td>
                <td>{event.delay_ms === undefined ? '—' : `${event.delay_ms} ms`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function perSecond(events: Revocation[], now: number): Second[] {
  const end = Math.floor(now / 1000);
  const seconds: Second[] = Array.from({ length: SPAN }, (_, i) => ({
    at: end - SPAN + 1 + i,
    count: 0,
    maxDelayMs: 0,
  }));
  for (const event of events) {
    const second = Math.floor(Date.parse(event.applied_at ?? event.at) / 1000);
    const slot = seconds[second - (end - SPAN + 1)];
    if (!slot) continue;
    slot.count += 1;
    slot.maxDelayMs = Math.max(slot.maxDelayMs, event.delay_ms ?? 0);
  }
  return seconds;
}

/** Bars: revocations per second; line: the slowest propagation delay of that second. */
function Chart({ seconds }: { seconds: Second[] }) {
  const width = 600;
  const height = 120;
  const step = width / seconds.length;
  const maxCount = Math.max(1, ...seconds.map((s) => s.count));
  const maxDelay = Math.max(50, ...seconds.map((s) => s.maxDelayMs));
  const total = seconds.reduce((sum, s) => sum + s.count, 0);
  const slowest = Math.max(0, ...seconds.map((s) => s.maxDelayMs));
  const line = seconds
    .map((s, i) => `${(i + 0.5) * step},${height - (s.maxDelayMs / maxDelay) * (height - 10)}`)
    .join(' ');
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`${total} revocations in the last ${seconds.length} seconds; slowest applied after ${slowest} ms`}
      >
        {seconds.map((s, i) => (
          <rect
            key={s.at}
            x={i * step + 1}
            width={step - 2}
            y={height - (s.count / maxCount) * (height - 10)}
            height={(s.count / maxCount) * (height - 10)}
            class="bar"
          />
        ))}
        <polyline points={line} class="delay" fill="none" />
      </svg>
      <figcaption>
        Bars: revocations per second (up to {maxCount}); line: slowest delay from event to gateway
        per second (scale {maxDelay} ms).
      </figcaption>
    </figure>
  );
}
