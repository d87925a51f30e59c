import { rotatingSeeds } from './seed-brokers';

describe('rotatingSeeds', () => {
  it('gives one broker at each call, each in turn, so that no new client starts where the last one did', () => {
    const seeds = rotatingSeeds(['b1:9092', 'b2:9092', 'b3:9092']);
    expect(Array.from({ length: 4 }, () => seeds())).toEqual([
      ['b1:9092'],
      ['b2:9092'],
      ['b3:9092'],
      ['b1:9092'],
    ]);
  });

  it('refuses an empty list', () => {
    expect(() => rotatingSeeds([])).toThrow('no Kafka broker given');
  });
});
