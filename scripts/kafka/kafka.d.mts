// Types for the test files that import the Kafka launcher.
export const singleNodeSettings: Record<string, string>;
export function kraftClusterId(): string;
