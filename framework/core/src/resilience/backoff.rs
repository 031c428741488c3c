//! [`Backoff`]: the one schedule of waits between attempts in the
//! framework (exponential, capped, with optional jitter). The retry
//! policy, the projection manager, the event publisher and the saga
//! dispatchers all compute their waits here.

use std::time::Duration;

/// Waits that double from `initial` after each failed attempt, up to `max`,
/// optionally shortened by a random amount (jitter) so that many clients
/// failing at once do not all come back at the same instant.
///
/// The wait after failed attempt `n` (1-based) is at most
/// [`ceiling(n)`](Self::ceiling) `= min(initial * 2^(n-1), max)` and at
/// least `ceiling(n) * (1 - jitter)`: jitter `0.0` (the default) gives the
/// exact ceiling, `1.0` ("full jitter") anything from zero to it.
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::resilience::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
/// let waits: Vec<_> = (1..=5).map(|n| backoff.delay(n).as_millis()).collect();
/// assert_eq!(waits, [100, 200, 400, 500, 500]);
///
/// let jittered = backoff.with_jitter(0.5);
/// let wait = jittered.delay(3);
/// assert!(wait >= Duration::from_millis(200) && wait <= Duration::from_millis(400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    /// Waits of `initial`, doubling after each failure up to `max` (a
    /// `max` below `initial` is taken as `initial`; `Backoff::new(d, d)` waits
    /// `d` every time), without jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            jitter: 0.0,
        }
    }

    /// Shortens each wait by a random fraction of up to `jitter` (clamped
    /// to `0.0..=1.0`; `1.0` is "full jitter").
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        self
    }

    /// The first wait.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The longest wait.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The jitter fraction (`0.0` to `1.0`).
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The wait after failed attempt `attempt` (1-based) before jitter:
    /// `min(initial * 2^(attempt-1), max)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }

    /// The wait after failed attempt `attempt` (1-based), with jitter drawn
    /// at random.
    pub fn delay(&self, attempt: u32) -> Duration {
        if self.jitter == 0.0 {
            return self.ceiling(attempt);
        }
        self.delay_with(attempt, random_fraction())
    }

    /// The wait after failed attempt `attempt` for a given random draw
    /// `random` in `0.0..=1.0`: `ceiling * (1 - jitter * random)`. For tests
    /// and for callers with their own source of randomness.
    pub fn delay_with(&self, attempt: u32, random: f64) -> Duration {
        let random = if random.is_nan() {
            0.0
        } else {
            random.clamp(0.0, 1.0)
        };
        let ceiling = self.ceiling(attempt);
        let cut = ceiling.mul_f64(self.jitter * random);
        ceiling.saturating_sub(cut)
    }
}

impl Default for Backoff {
    /// 100 ms doubling up to 10 s, without jitter.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

/// A number in `0.0..1.0` from the operating system's random source (the
/// random bits of a v4 UUID, which the crate already depends on: jitter
/// needs no cryptographic quality, only independence between processes).
fn random_fraction() -> f64 {
    // The low 64 bits of a v4 UUID: the top two are its variant (fixed),
    // the other 62 random; keep 53 of those, a double's precision.
    let low = uuid::Uuid::new_v4().as_u128() as u64;
    let bits = (low << 2) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_fractions_stay_in_the_unit_interval_and_vary() {
        let draws: Vec<f64> = (0..100).map(|_| random_fraction()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn huge_attempt_numbers_saturate_at_the_cap() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(30));
        assert_eq!(backoff.ceiling(0), Duration::from_secs(1));
    }
}
