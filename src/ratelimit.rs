//! Per-client token buckets (`governor`, keyed by client IP): `RATE_LIMIT_RPS` sustained,
//! `RATE_LIMIT_BURST` at once. Off when the rate is 0. A refused request is HTTP 429 with
//! `Retry-After` (see `error.rs` for why 429 rather than a 200 error body).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::Config;
use crate::error::ProxyError;

/// The limiter, or nothing when rate limiting is off.
pub struct RateLimiter {
    inner: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RateLimiter(enabled: {})", self.inner.is_some())
    }
}

impl RateLimiter {
    /// Builds the limiter from `RATE_LIMIT_RPS` / `RATE_LIMIT_BURST`.
    pub fn new(config: &Config) -> RateLimiter {
        let inner = NonZeroU32::new(config.rate_limit_rps).map(|rps| {
            let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(rps);
            governor::RateLimiter::keyed(Quota::per_second(rps).allow_burst(burst))
        });
        RateLimiter { inner }
    }

    /// Takes one token for `client`.
    ///
    /// # Errors
    /// [`ProxyError::TooManyRequests`] with the seconds until a token is free.
    pub fn check(&self, client: IpAddr) -> Result<(), ProxyError> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ProxyError::TooManyRequests {
                reason: format!("rate limit exceeded for {client}"),
                retry_after_s: wait.as_secs().max(1),
            }
        })?;
        if limiter.len() > 100_000 {
            limiter.retain_recent();
        }
        Ok(())
    }
}
