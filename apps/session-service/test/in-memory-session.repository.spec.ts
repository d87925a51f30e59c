import { InMemorySessionRepository } from './in-memory-session.repository';
import { describeSessionRepository, ended } from './session-repository.conformance';

// The fake SessionService's unit specs run on, held to the suite the Redis store passes.
describeSessionRepository('in-memory fake', (rules) => {
  const repository = new InMemorySessionRepository(rules);
  let now = Date.now();
  return Promise.resolve({
    repository,
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
    events: () => Promise.resolve(repository.events.map(ended)),
    stop: () => Promise.resolve(),
  });
});
