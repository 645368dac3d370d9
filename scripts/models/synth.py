"""Synthetic but plausible food-delivery data: entity snapshots (restaurant, zone, customer), request features,
and the ground truth the demo models learn (delivery minutes, lateness, rider tip).

Every value is rounded to a fixed grid (2-3 decimals, or whole numbers) so that float32 inputs never land on a
tree split threshold (thresholds sit halfway between grid values) and the seed population and the training rows
share one distribution. All randomness comes from the numpy Generator passed in.
"""
import numpy as np

# Feature names per entity (the feature store's hash fields), in a fixed order.
RESTAURANT = ['prep_time_avg_7d', 'prep_time_avg_1h', 'orders_last_30m', 'cancel_rate_7d', 'rating_avg_30d', 'kitchen_load']
ZONE = ['active_riders', 'open_orders', 'rider_wait_avg_15m', 'traffic_index', 'avg_speed_kmh']
CUSTOMER = ['distance_to_door_m', 'building_floor']
# Sent by the caller with each request.
REQUEST = ['distance_km', 'hour_of_day', 'day_of_week', 'basket_size', 'basket_value', 'is_raining', 'is_weekend']
# Whole-number features (written as JSON integers).
INTEGER = {'orders_last_30m', 'active_riders', 'open_orders', 'building_floor', 'hour_of_day', 'day_of_week',
           'basket_size', 'is_raining', 'is_weekend', 'promised_minutes'}

PEAK_HOURS = {12, 13, 19, 20, 21}


def restaurants(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    prep7 = np.clip(rng.normal(16.0, 5.0, n), 6.0, 40.0).round(2)
    capacity = rng.uniform(8.0, 40.0, n)
    orders = rng.poisson(capacity * rng.uniform(0.2, 1.3, n))
    load = np.clip(orders / capacity, 0.0, 1.5).round(3)
    prep1h = np.clip(prep7 * (0.8 + 0.4 * load) + rng.normal(0.0, 2.5, n), 4.0, 60.0).round(2)
    return {
        'prep_time_avg_7d': prep7,
        'prep_time_avg_1h': prep1h,
        'orders_last_30m': orders.astype(np.float64),
        'cancel_rate_7d': np.clip(rng.beta(2.0, 60.0, n), 0.0, 0.3).round(3),
        'rating_avg_30d': np.clip(rng.normal(4.2, 0.35, n), 2.5, 5.0).round(2),
        'kitchen_load': load,
    }


def zones(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    riders = rng.integers(5, 151, n)
    open_orders = np.round(riders * rng.uniform(0.3, 2.0, n))
    traffic = rng.uniform(0.1, 0.95, n).round(2)
    wait = np.clip(1.5 + 3.5 * open_orders / riders + rng.normal(0.0, 1.0, n), 0.0, 20.0).round(2)
    speed = np.clip(rng.normal(24.0, 4.0, n) * (1.0 - 0.35 * traffic), 8.0, 35.0).round(2)
    return {
        'active_riders': riders.astype(np.float64),
        'open_orders': open_orders,
        'rider_wait_avg_15m': wait,
        'traffic_index': traffic,
        'avg_speed_kmh': speed,
    }


def customers(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        'distance_to_door_m': np.clip(rng.lognormal(np.log(60.0), 0.8, n), 5.0, 500.0).round(1),
        'building_floor': np.minimum(rng.geometric(0.3, n) - 1, 25).astype(np.float64),
    }


def requests(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    hour_weights = np.array([1, 1, 0.5, 0.3, 0.2, 0.2, 0.5, 1, 2, 2, 2, 3, 8, 9, 6, 3, 2, 3, 5, 9, 10, 8, 4, 2], dtype=np.float64)
    hour = rng.choice(24, n, p=hour_weights / hour_weights.sum()).astype(np.float64)
    day = rng.integers(0, 7, n).astype(np.float64)
    size = (1 + rng.poisson(2.5, n)).astype(np.float64)
    return {
        'distance_km': np.clip(rng.gamma(2.0, 1.5, n), 0.2, 15.0).round(2),
        'hour_of_day': hour,
        'day_of_week': day,
        'basket_size': size,
        'basket_value': (size * rng.uniform(6.0, 18.0, n)).round(2),
        'is_raining': (rng.random(n) < 0.15).astype(np.float64),
        'is_weekend': (day >= 5).astype(np.float64),
    }


def delivery_minutes(rng: np.random.Generator, f: dict[str, np.ndarray]) -> np.ndarray:
    """Door-to-door minutes: the slower of kitchen and rider pick-up, then the ride, then the walk to the door."""
    n = len(f['distance_km'])
    peak = np.isin(f['hour_of_day'], list(PEAK_HOURS))
    speed = f['avg_speed_kmh'] * np.where(f['is_raining'] > 0, 0.82, 1.0) * np.where(peak, 0.9, 1.0)
    ride = f['distance_km'] / speed * 60.0
    kitchen = (0.55 * f['prep_time_avg_1h'] + 0.45 * f['prep_time_avg_7d'] + 0.25 * f['basket_size']
               + 6.0 * np.maximum(f['kitchen_load'] - 0.8, 0.0))
    pickup = f['rider_wait_avg_15m'] * (1.0 + 0.4 * np.maximum(f['open_orders'] / f['active_riders'] - 1.0, 0.0))
    door = f['distance_to_door_m'] / 50.0 + 0.35 * f['building_floor']
    noise = rng.normal(0.0, 2.5, n) * (1.0 + 0.5 * f['is_raining'])
    minutes = 3.0 + np.maximum(kitchen, pickup) + ride + door + 1.0 * f['is_weekend'] + noise
    return np.maximum(minutes, 8.0)


def promised_minutes(rng: np.random.Generator, f: dict[str, np.ndarray]) -> np.ndarray:
    """The quote shown at checkout: a crude estimate from the 7-day prep time and distance, whole minutes."""
    n = len(f['distance_km'])
    return np.round(12.0 + 0.9 * f['prep_time_avg_7d'] + 3.4 * f['distance_km'] + rng.normal(0.0, 3.0, n))


def tip_amount(rng: np.random.Generator, f: dict[str, np.ndarray]) -> np.ndarray:
    """Rider tip in currency units: grows with basket value, distance, rain and late-night orders."""
    n = len(f['distance_km'])
    night = (f['hour_of_day'] >= 22) | (f['hour_of_day'] <= 4)
    tip = (0.06 * f['basket_value'] * (1.0 + 0.5 * f['is_raining']) + 0.18 * f['distance_km']
           + 0.8 * night + 0.03 * f['eta_minutes'] + 0.05 * f['basket_size'] ** 1.5 + rng.normal(0.0, 0.4, n))
    return np.maximum(tip, 0.0)


def merge(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for p in parts:
        out.update(p)
    return out


def matrix(f: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.column_stack([f[n] for n in names]).astype(np.float64)
