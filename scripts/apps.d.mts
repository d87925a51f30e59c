// Types for the test files that import the app table and launcher.
export interface AppSpec {
  name: string;
  portVar: string;
  port: number;
  scalable: boolean;
}
export const APPS: AppSpec[];
export const NODE_FLAGS: string[];
export function wiringEnv(options: {
  name: string;
  instanceId: string;
  brokers: string;
  redisUrl: string;
  sessionServiceUrl: string;
  seedDemoUsers?: string;
}): Record<string, string>;
export const root: string;

import type { ProcessHandle } from './lib/process.mjs';

export interface AppHandle extends ProcessHandle {
  url: string;
  port: number;
  label: string;
}
export function startApp(options: {
  name: string;
  label?: string;
  port: number;
  host?: string;
  env?: Record<string, string>;
  logFile?: string;
  readyTimeoutMs?: number;
  /** A command the app runs under, e.g. `['unshare', '--pid', '--fork']`. */
  wrapper?: string[];
}): Promise<AppHandle>;
export function entryFile(name: string): string;
