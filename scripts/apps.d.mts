// Types for the test files that import the app table and launcher.
export interface AppSpec {
  name: string;
  portVar: string;
  port: number;
  needs: ('redis' | 'kafka')[];
  scalable: boolean;
}
export const APPS: AppSpec[];
export const NODE_FLAGS: string[];
export const root: string;
