// A real Chromium for the console's tests and benchmark: Debian's `chromium` package driven by
// playwright-core (the npm registry's browser downloads are not reachable here). Installed
// when missing, as redis-server is (scripts/redis/redis.ts), when we may.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Where Debian puts the browser itself (`/usr/bin/chromium` is a shell wrapper around it). */
const CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];

export function ensureChromium(log: (line: string) => void = console.error): string {
  const found = CANDIDATES.find((path) => existsSync(path));
  if (found) return found;
  if (process.getuid?.() !== 0)
    throw new Error('chromium is not installed; install it (Debian: apt-get install chromium)');
  log('[browser] chromium missing; installing Debian package chromium');
  execFileSync(
    'sh',
    [
      '-c',
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null',
    ],
    { stdio: 'inherit' },
  );
  const installed = CANDIDATES.find((path) => existsSync(path));
  if (!installed) throw new Error('installing chromium did not give /usr/lib/chromium/chromium');
  return installed;
}

/** Headless Chromium; as root it needs --no-sandbox (the user namespace sandbox is refused). */
export function launchChromium(): Promise<Browser> {
  const executablePath = ensureChromium();
  const asRoot = process.getuid?.() === 0;
  const version = spawnSync(executablePath, ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (!version) throw new Error(`${executablePath} does not run`);
  return chromium.launch({
    executablePath,
    headless: true,
    args: [...(asRoot ? ['--no-sandbox'] : []), '--disable-dev-shm-usage'],
  });
}
