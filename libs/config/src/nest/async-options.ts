import type { InjectionToken, OptionalFactoryDependency } from '@nestjs/common';

/** What a module's `forRootAsync` takes: a factory of its options and what to inject into it. */
export interface AsyncOptions<T> {
  useFactory: (...args: never[]) => T | Promise<T>;
  inject?: (InjectionToken | OptionalFactoryDependency)[];
}
