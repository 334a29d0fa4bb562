//! Per-client limits at the token endpoint: a token bucket per authenticated client, holding up
//! to `token_burst` requests and refilled at `token_rate` per second. Only requests that
//! authenticated as the client count, so a stranger who knows a client's id cannot use up its
//! allowance. Kept in this node's memory (one bucket per registered client at most).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    requests: f64,
    at: Instant,
}

/// The burst a client gets: `burst`, or as many as `rate` when `burst` is 0.
pub fn burst_of(rate: u32, burst: u32) -> u32 {
    if burst == 0 { rate } else { burst }
}

impl RateLimits {
    /// Takes one request from `client`'s allowance, or says in how many whole seconds one will
    /// be there. `rate` 0 means no limit; for `burst`, see `burst_of`.
    pub fn take(&self, client: &str, rate: u32, burst: u32, now: Instant) -> Result<(), u64> {
        if rate == 0 {
            return Ok(());
        }
        let (rate, burst) = (f64::from(rate), f64::from(burst_of(rate, burst)));
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(client.to_string()).or_insert(Bucket { requests: burst, at: now });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.requests = (bucket.requests + refill).min(burst);
        bucket.at = now;
        if bucket.requests >= 1.0 {
            bucket.requests -= 1.0;
            Ok(())
        } else {
            // Whole seconds, rounded up, at least one (what `Retry-After` can say).
            let wait = ((1.0 - bucket.requests) / rate).ceil().max(1.0);
            Err(if wait < 86_400.0 { wait as u64 } else { 86_400 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate_per_client_and_no_limit_at_zero() {
        let limits = RateLimits::default();
        let t0 = Instant::now();
        assert_eq!(limits.take("a", 2, 3, t0), Ok(()));
        assert_eq!(limits.take("a", 2, 3, t0), Ok(()));
        assert_eq!(limits.take("a", 2, 3, t0), Ok(()));
        assert_eq!(limits.take("a", 2, 3, t0), Err(1));
        // Another client has its own allowance.
        assert_eq!(limits.take("b", 2, 3, t0), Ok(()));
        // Half a second refills one request at 2 per second; the burst is the ceiling.
        assert_eq!(limits.take("a", 2, 3, t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(limits.take("a", 2, 3, t0 + Duration::from_millis(500)), Err(1));
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limits.take("a", 2, 3, later), Ok(()));
        }
        assert_eq!(limits.take("a", 2, 3, later), Err(1));
        // A slow rate asks for a longer wait; burst 0 means the rate.
        assert_eq!(limits.take("c", 1, 0, t0), Ok(()));
        assert_eq!(limits.take("c", 1, 0, t0), Err(1));
        // No limit.
        for _ in 0..1000 {
            assert_eq!(limits.take("d", 0, 0, t0), Ok(()));
        }
    }
}
