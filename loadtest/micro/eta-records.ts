/** Realistic prediction-log records for the sink benchmarks: one delivery-eta prediction each (20 features, 3 entities, one output, UUID ids), ~1.1 KB as a CloudEvent. */
import { randomUUID } from 'node:crypto';
import { recordTime, type PredictionRecord } from '../../gateway/log/prediction-record.ts';

/** The 20 features of delivery-eta v2 (scripts/models), with values of the usual magnitude. */
const FEATURES: [string, (i: number) => number][] = [
  ['distance_km', (i) => 0.5 + (i % 97) / 10], ['hour_of_day', (i) => i % 24], ['day_of_week', (i) => i % 7],
  ['basket_size', (i) => 1 + (i % 6)], ['basket_value', (i) => 12.5 + (i % 113) * 0.73], ['is_raining', (i) => i % 5 === 0 ? 1 : 0],
  ['is_weekend', (i) => i % 7 >= 5 ? 1 : 0], ['prep_time_avg_7d', (i) => 10 + (i % 53) / 7], ['prep_time_avg_1h', (i) => 6 + (i % 61) / 4],
  ['orders_last_30m', (i) => i % 40], ['cancel_rate_7d', (i) => (i % 50) / 1000], ['rating_avg_30d', (i) => 3.5 + (i % 15) / 10],
  ['kitchen_load', (i) => (i % 150) / 100], ['active_riders', (i) => 40 + (i % 120)], ['open_orders', (i) => 30 + (i % 170)],
  ['rider_wait_avg_15m', (i) => 2 + (i % 70) / 10], ['traffic_index', (i) => (i % 100) / 100], ['avg_speed_kmh', (i) => 12 + (i % 130) / 10],
  ['distance_to_door_m', (i) => 20 + (i % 900) / 10], ['building_floor', (i) => i % 12],
];

/** `n` prediction records like the gateway's for delivery-eta (pairs share a request id: a live and a shadow). */
export function etaRecords(n: number, round = 0): PredictionRecord[] {
  const t = Date.now();
  const num = (value: number) => value;
  let requestId = '';
  return Array.from({ length: n }, (_, i) => {
    if (i % 2 === 0) requestId = randomUUID();
    return {
      predictionId: randomUUID(),
      requestId,
      time: recordTime(t + i),
      cell: 'bench',
      model: 'delivery-eta',
      version: '2',
      role: i % 2 === 0 ? 'ROLE_LIVE' : 'ROLE_SHADOW',
      arm: '',
      rows: [
        {
          entities: { restaurant: `r-${(i * 7) % 5000}`, zone: `z-${i % 120}`, customer: `c-${(i * 13) % 200_000}` },
          features: Object.fromEntries(FEATURES.map(([name, f]) => [name, num(Math.round(f(i + round) * 100) / 100)])),
          outputs: { eta_minutes: num(20 + ((i * 31) % 2500) / 100) },
          defaultedFeatures: i % 10 === 0 ? ['prep_time_avg_1h'] : [],
        },
      ],
      modelLatencyUs: String(60 + (i % 40)),
      totalLatencyUs: String(250 + (i % 300)),
    };
  });
}
