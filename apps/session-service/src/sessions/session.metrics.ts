import { Inject, Injectable } from '@nestjs/common';
import { METRICS_REGISTRY } from '@app/observability';
import { Counter, type Registry } from 'prom-client';

@Injectable()
export class SessionMetrics {
  readonly signIns: Counter<'method'>;
  readonly refreshes: Counter;
  readonly revocations: Counter<'reason'>;
  readonly reuseDetections: Counter;
  readonly deviceLimitRejections: Counter;
  readonly deviceLimitEvictions: Counter;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry) {
    const registers = [registry];
    this.signIns = new Counter({
      name: 'session_sign_ins_total',
      help: 'Sessions opened, by method',
      labelNames: ['method'],
      registers,
    });
    this.refreshes = new Counter({
      name: 'session_refreshes_total',
      help: 'Refresh tokens rotated',
      registers,
    });
    this.revocations = new Counter({
      name: 'session_revocations_total',
      help: 'Session ends requested through this instance, by reason (device-limit evictions and expiries are in the outbox)',
      labelNames: ['reason'],
      registers,
    });
    this.reuseDetections = new Counter({
      name: 'session_refresh_reuse_total',
      help: 'Rotated refresh tokens presented again after the grace window',
      registers,
    });
    this.deviceLimitEvictions = new Counter({
      name: 'session_device_limit_evictions_total',
      help: 'Sessions ended to make room under a device limit',
      registers,
    });
    this.deviceLimitRejections = new Counter({
      name: 'session_device_limit_rejections_total',
      help: 'Sign-ins refused by a reject policy',
      registers,
    });
  }
}
