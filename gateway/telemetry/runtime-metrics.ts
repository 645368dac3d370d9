/**
 * Process and Node.js runtime metrics, read at scrape time (nothing runs per request):
 *
 * Process, under the names every Prometheus client library exports
 * (https://prometheus.io/docs/instrumenting/writing_clientlibs/#process-metrics):
 *   process_cpu_seconds_total, process_resident_memory_bytes, process_start_time_seconds,
 *   process_virtual_memory_bytes, process_open_fds, process_max_fds (the last three from /proc, Linux only)
 * Node.js and V8, under the OpenTelemetry semantic conventions' names (https://opentelemetry.io/docs/specs/semconv/runtime/nodejs-metrics/,
 * .../v8js-metrics/) as the OpenTelemetry-to-Prometheus translation writes them (dots to underscores, unit suffix):
 *   nodejs_eventloop_delay_{min,max,mean,stddev,p50,p90,p99}_seconds   gauges over the time since the previous
 *       scrape (monitorEventLoopDelay, 20 ms resolution; absent when the window had no sample)
 *   nodejs_eventloop_utilization_ratio                                 gauge, the same window
 *   v8js_gc_duration_seconds{v8js_gc_type}                             histogram; type: major | minor | incremental | weakcb
 *   v8js_memory_heap_used_bytes, v8js_memory_heap_limit_bytes,
 *   v8js_memory_heap_space_available_size_bytes, v8js_memory_heap_space_physical_size_bytes   gauges per {v8js_heap_space_name}
 *
 * The GC histogram's buckets include the conventions' advice (0.01, 0.1, 1, 10 s) and finer ones below 10 ms,
 * where a gateway's pauses are.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver, performance, type EventLoopUtilization, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import type { Meter } from '@opentelemetry/api';
import { HistogramFamily, type HistogramCell } from './metric-families.ts';

const GC_BUCKETS_SECONDS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1, 10]);

const GC_KINDS: Readonly<Record<number, string>> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export interface RuntimeMetrics {
  /** The families this module records itself (GC), for the metric producer. */
  readonly families: readonly HistogramFamily[];
  /** Stops the event-loop monitor and the GC observer; idempotent. */
  stop(): void;
}

/** Registers the observable instruments on `meter` and starts the event-loop monitor and the GC observer. */
export function startRuntimeMetrics(meter: Meter): RuntimeMetrics {
  const gc = new HistogramFamily({ name: 'v8js_gc_duration_seconds', description: 'Garbage collection pauses, by type.', unit: 's' }, GC_BUCKETS_SECONDS);
  const gcCells = new Map<string, HistogramCell>();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = GC_KINDS[(entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'unknown';
      let cell = gcCells.get(kind);
      if (cell === undefined) gcCells.set(kind, (cell = gc.cell({ v8js_gc_type: kind })));
      cell.record(entry.duration / 1000);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  let elu: EventLoopUtilization = performance.eventLoopUtilization();

  observeProcess(meter);

  const gauge = (name: string, description: string, unit?: string) => meter.createObservableGauge(name, unit === undefined ? { description } : { description, unit });
  const delayGauges = (['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'] as const).map(
    (stat) => [stat, gauge(`nodejs_eventloop_delay_${stat}_seconds`, `Event loop delay since the previous scrape: ${stat}.`, 's')] as const,
  );
  const utilization = gauge('nodejs_eventloop_utilization_ratio', 'Event loop utilization since the previous scrape (0-1).');
  meter.addBatchObservableCallback(
    (result) => {
      if (delay.count > 0) {
        const values = { min: delay.min, max: delay.max, mean: delay.mean, stddev: delay.stddev, p50: delay.percentile(50), p90: delay.percentile(90), p99: delay.percentile(99) };
        for (const [stat, g] of delayGauges) result.observe(g, values[stat] / 1e9);
      }
      delay.reset();
      const now = performance.eventLoopUtilization();
      result.observe(utilization, performance.eventLoopUtilization(now, elu).utilization);
      elu = now;
    },
    [...delayGauges.map(([, g]) => g), utilization],
  );

  const space = 'v8js_heap_space_name';
  const used = gauge('v8js_memory_heap_used_bytes', 'V8 heap memory used, by heap space.');
  const limit = gauge('v8js_memory_heap_limit_bytes', 'V8 heap memory allocated for the space (its size), by heap space.');
  const available = gauge('v8js_memory_heap_space_available_size_bytes', 'V8 heap memory still available, by heap space.');
  const physical = gauge('v8js_memory_heap_space_physical_size_bytes', 'V8 heap memory committed (physical), by heap space.');
  meter.addBatchObservableCallback(
    (result) => {
      for (const s of getHeapSpaceStatistics()) {
        const labels = { [space]: s.space_name };
        result.observe(used, s.space_used_size, labels);
        result.observe(limit, s.space_size, labels);
        result.observe(available, s.space_available_size, labels);
        result.observe(physical, s.physical_space_size, labels);
      }
    },
    [used, limit, available, physical],
  );

  let stopped = false;
  return {
    families: [gc],
    stop() {
      if (stopped) return;
      stopped = true;
      observer.disconnect();
      delay.disable();
    },
  };
}

function observeProcess(meter: Meter): void {
  const startTimeSeconds = (Date.now() - process.uptime() * 1000) / 1000;
  const cpu = meter.createObservableCounter('process_cpu_seconds_total', { description: 'User and system CPU time of the process.', unit: 's' });
  const rss = meter.createObservableGauge('process_resident_memory_bytes', { description: 'Resident memory of the process.' });
  const start = meter.createObservableGauge('process_start_time_seconds', { description: 'Start time of the process since the Unix epoch.', unit: 's' });
  const virtual = meter.createObservableGauge('process_virtual_memory_bytes', { description: 'Virtual memory of the process.' });
  const openFds = meter.createObservableGauge('process_open_fds', { description: 'Open file descriptors.' });
  const maxFds = meter.createObservableGauge('process_max_fds', { description: 'The limit of open file descriptors.' });
  const maxOpenFiles = readMaxFds();
  meter.addBatchObservableCallback(
    (result) => {
      const u = process.cpuUsage();
      result.observe(cpu, (u.user + u.system) / 1e6);
      result.observe(rss, process.memoryUsage.rss());
      result.observe(start, startTimeSeconds);
      const vsize = readVirtualMemory();
      if (vsize !== undefined) result.observe(virtual, vsize);
      const fds = countOpenFds();
      if (fds !== undefined) result.observe(openFds, fds);
      if (maxOpenFiles !== undefined) result.observe(maxFds, maxOpenFiles);
    },
    [cpu, rss, start, virtual, openFds, maxFds],
  );
}

/** /proc/self/stat field 23 (vsize, bytes); undefined where there is no /proc. */
function readVirtualMemory(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[20]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function countOpenFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

function readMaxFds(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
