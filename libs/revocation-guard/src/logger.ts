/** Where the guard reports; the Nest module passes Nest's logger, others `console`. */
export interface Logger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}
