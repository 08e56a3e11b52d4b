//! How many times to try a request and how long to wait between tries:
//! exponential backoff with full jitter, the one policy of every component
//! that retries (transfer's S3 requests, Rucio's). What is worth retrying
//! is each protocol's own decision.

/// Attempts and backoff for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 5, base_delay_ms: 250, max_delay_ms: 20_000 }
    }
}

impl RetryPolicy {
    /// The full-jitter wait before retry number `retry` (1-based): uniform
    /// in `0..=min(max_delay, base × 2^(retry-1))`, drawn from `random`, so
    /// that parallel workers that failed together do not return together.
    pub fn backoff_ms(&self, retry: u32, random: u64) -> u64 {
        let exp = retry.saturating_sub(1).min(40);
        let ceiling = self.base_delay_ms.saturating_mul(1u64 << exp).min(self.max_delay_ms);
        random % (ceiling + 1)
    }
}

/// xorshift64*: a small seeded generator for jitter, for drivers without
/// another source (seed it from `wasi:random`).
#[derive(Clone, Debug)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Jitter(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_ceiling() {
        let p = RetryPolicy { max_attempts: 5, base_delay_ms: 250, max_delay_ms: 1000 };
        assert_eq!(p.backoff_ms(1, u64::MAX), u64::MAX % 251);
        for (retry, ceiling) in [(1, 250), (2, 500), (3, 1000), (4, 1000), (90, 1000)] {
            let mut jitter = Jitter::new(retry.into());
            assert!((0..200).map(|_| p.backoff_ms(retry, jitter.next_u64())).all(|d| d <= ceiling), "retry {retry}");
        }
    }
}
