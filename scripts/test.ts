// `npm test`: the quality gates (format, lint, types), the build, then every Jest project.
//   node scripts/test.ts                    everything
//   node scripts/test.ts --only unit        one project (unit | integration | e2e)
//   node scripts/test.ts --skip-gates ...   tests only; other arguments go to Jest
import { spawnSync } from 'node:child_process';
import { build } from './build.ts';

const args = process.argv.slice(2);
const take = (flag: string): string | undefined => {
  const at = args.indexOf(flag);
  if (at === -1) return undefined;
  const [, value] = args.splice(at, 2);
  return value ?? '';
};
const only = take('--only');
const skipGates = args.includes('--skip-gates')
  ? (args.splice(args.indexOf('--skip-gates'), 1), true)
  : false;

const steps: { name: string; ok: boolean; seconds: string }[] = [];
function run(
  name: string,
  command: string,
  commandArgs: string[],
  env: NodeJS.ProcessEnv = {},
): boolean {
  const started = Date.now();
  process.stderr.write(`\n▶ ${name}\n`);
  const result = spawnSync(command, commandArgs, {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  steps.push({ name, ok: result.status === 0, seconds });
  return result.status === 0;
}

function summary(): void {
  process.stderr.write('\n');
  for (const step of steps)
    process.stderr.write(`${step.ok ? '✔' : '✘'} ${step.name} (${step.seconds} s)\n`);
}

let ok = true;
if (!skipGates) {
  ok =
    run('format (prettier --check)', 'npx', ['prettier', '--check', '--log-level', 'warn', '.']) &&
    ok;
  ok = run('lint (eslint --max-warnings 0)', 'npx', ['eslint', '.', '--max-warnings', '0']) && ok;
  ok = run('types (tsc --noEmit)', 'npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']) && ok;
  // The web console is browser code with a configuration of its own (DOM, JSX).
  const web = ['tsc', '--noEmit', '-p', 'apps/gateway/web/tsconfig.json'];
  ok = run('types of the web console (tsc --noEmit)', 'npx', web) && ok;
}
if (ok) {
  await build();
  const projects = only ? ['--selectProjects', only] : [];
  // --forceExit: a test that leaks a handle must fail its own assertions, not hang CI.
  ok = run(
    `tests (jest${only ? ` ${only}` : ''})`,
    'npx',
    ['jest', '--forceExit', ...args, ...projects],
    {
      // NestJS 12 ships ES modules; Jest can require them from CommonJS only with this flag.
      // KafkaJS 2.2.4 arms negative timers, which Node 24 reports on every client.
      NODE_OPTIONS:
        `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --disable-warning=ExperimentalWarning --disable-warning=TimeoutNegativeWarning`.trim(),
    },
  );
}
summary();
process.exit(ok ? 0 : 1);
