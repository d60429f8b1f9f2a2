//! A device's reconnect policy as the device SDKs implement it: a base delay that is fixed or grows
//! exponentially from `--min-delay` to `--max-delay`, and jitter by the names AWS uses ("Exponential
//! Backoff And Jitter", the AWS SDKs and the IoT Device SDKs): none, full, equal, decorrelated.

use std::time::Duration;

/// How the base delay grows with each failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// `min * 2^(n-1)`, at most `max`.
    Exponential,
    /// `min` every time.
    Fixed,
}

/// How the delay is randomised around the base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    /// The base delay exactly: every device that failed together retries together.
    None,
    /// Uniform in `[0, base]`.
    Full,
    /// `base/2 + uniform[0, base/2]`.
    Equal,
    /// `min(max, uniform[min, previous * 3])`.
    Decorrelated,
}

impl Backoff {
    /// The backoff named as the JSON names it.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Exponential, Self::Fixed].into_iter().find(|b| serde_json::to_value(b).is_ok_and(|v| v == name))
    }
}

impl Jitter {
    /// The jitter named as the JSON names it.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::None, Self::Full, Self::Equal, Self::Decorrelated]
            .into_iter()
            .find(|j| serde_json::to_value(j).is_ok_and(|v| v == name))
    }
}

/// A reconnect policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// How the base delay grows.
    pub backoff: Backoff,
    /// How it is randomised.
    pub jitter: Jitter,
    /// The first base delay.
    pub min_delay: Duration,
    /// The largest base delay.
    pub max_delay: Duration,
}

impl Policy {
    /// The wait after the `failures`-th failed attempt in a row (1 for the first), given the wait
    /// before (`previous`, for decorrelated jitter) and a random source.
    pub fn delay(&self, failures: u32, previous: Duration, rng: &mut Rng) -> Duration {
        let (min, max) = (self.min_delay, self.max_delay.max(self.min_delay));
        let base = match self.backoff {
            Backoff::Fixed => min,
            Backoff::Exponential => {
                let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(31));
                min.saturating_mul(factor).min(max)
            }
        };
        match self.jitter {
            Jitter::None => base,
            Jitter::Full => rng.between(Duration::ZERO, base),
            Jitter::Equal => base / 2 + rng.between(Duration::ZERO, base / 2),
            Jitter::Decorrelated => {
                let upper = previous.max(min).saturating_mul(3).min(max);
                rng.between(min, upper.max(min))
            }
        }
    }
}

/// A small deterministic random source (SplitMix64): each device gets its own stream from the run's
/// seed, so a storm can be run again with the same delays (`--seed`). Not for anything secret.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The stream of device `index` under `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        Self(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The next number of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[low, high]`, in microsecond steps.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_micros() as u64;
        if span == 0 {
            return low;
        }
        low + Duration::from_micros(self.next_u64() % (span + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff, jitter: Jitter) -> Policy {
        Policy { backoff, jitter, min_delay: Duration::from_secs(1), max_delay: Duration::from_secs(20) }
    }

    #[test]
    fn exponential_doubles_up_to_the_cap_and_fixed_stays() {
        let p = policy(Backoff::Exponential, Jitter::None);
        let mut r = Rng::new(1, 0);
        let d: Vec<u64> = (1..=7).map(|n| p.delay(n, Duration::ZERO, &mut r).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 20, 20]);
        assert_eq!(p.delay(u32::MAX, Duration::ZERO, &mut r), Duration::from_secs(20));
        let f = policy(Backoff::Fixed, Jitter::None);
        assert!((1..=5).all(|n| f.delay(n, Duration::ZERO, &mut r) == Duration::from_secs(1)));
    }

    #[test]
    fn jitter_stays_in_its_range_and_spreads() {
        let mut r = Rng::new(7, 3);
        for n in 1..=6 {
            let base = Duration::from_secs(1 << (n - 1)).min(Duration::from_secs(20));
            let full: Vec<Duration> =
                (0..200).map(|_| policy(Backoff::Exponential, Jitter::Full).delay(n, base, &mut r)).collect();
            assert!(full.iter().all(|d| *d <= base));
            assert!(full.iter().any(|d| *d < base / 4) && full.iter().any(|d| *d > base * 3 / 4), "spread");
            let equal = policy(Backoff::Exponential, Jitter::Equal);
            assert!((0..200).all(|_| {
                let d = equal.delay(n, base, &mut r);
                d >= base / 2 && d <= base
            }));
        }
        let dec = policy(Backoff::Exponential, Jitter::Decorrelated);
        let mut prev = Duration::from_secs(1);
        for _ in 0..200 {
            let d = dec.delay(1, prev, &mut r);
            assert!(
                d >= Duration::from_secs(1) && d <= (prev * 3).min(Duration::from_secs(20)),
                "{d:?} after {prev:?}"
            );
            prev = d;
        }
    }

    #[test]
    fn a_seed_gives_the_same_delays_and_devices_differ() {
        let p = policy(Backoff::Exponential, Jitter::Full);
        let run = |i| {
            let mut r = Rng::new(42, i);
            (1..=5).map(|n| p.delay(n, Duration::ZERO, &mut r)).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
