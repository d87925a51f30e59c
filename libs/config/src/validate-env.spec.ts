import { z } from 'zod';
import { csv, flag, httpEnv, trustProxy } from './env';
import { InvalidEnvironmentError, validateEnv } from './validate-env';

describe('validateEnv', () => {
  const schema = httpEnv(3000).extend({ BROKERS: csv, FAIL_OPEN: flag.default(false) });
  const validate = validateEnv(schema);

  it('applies defaults and converts types', () => {
    expect(validate({ BROKERS: 'a:1, b:2' })).toEqual({
      NODE_ENV: 'development',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: 3000,
      LOG_LEVEL: 'log',
      TRUST_PROXY: false,
      BROKERS: ['a:1', 'b:2'],
      FAIL_OPEN: false,
    });
  });

  it('names every bad variable and what it got', () => {
    expect(() => validate({ HTTP_PORT: '70000', FAIL_OPEN: 'maybe' })).toThrow(
      InvalidEnvironmentError,
    );
    try {
      validate({ HTTP_PORT: '70000', FAIL_OPEN: 'maybe' });
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain('HTTP_PORT');
      expect(message).toContain('got "70000"');
      expect(message).toContain('BROKERS');
      expect(message).toContain('not set');
      expect(message).toContain('FAIL_OPEN');
    }
  });

  it('rejects an empty list', () => {
    expect(() => validateEnv(z.object({ BROKERS: csv }))({ BROKERS: ' , ' })).toThrow(/BROKERS/);
  });
});

describe('TRUST_PROXY', () => {
  const parse = (value?: string) => trustProxy.safeParse(value);

  it('trusts no proxy unless told which', () => {
    expect(parse(undefined)).toMatchObject({ success: true, data: false });
    expect(parse('false')).toMatchObject({ success: true, data: false });
  });

  it('takes a hop count or proxy addresses and ranges', () => {
    expect(parse('1')).toMatchObject({ success: true, data: 1 });
    expect(parse('127.0.0.1, 10.0.0.0/8,::1,fd00::/8')).toMatchObject({
      success: true,
      data: ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8'],
    });
  });

  it('refuses "true" (any client could choose its address) and malformed entries', () => {
    for (const value of ['true', '10.0.0.0/33', 'proxy.local', '1.2.3.4/8/9'])
      expect({ value, ok: parse(value).success }).toEqual({ value, ok: false });
  });
});
