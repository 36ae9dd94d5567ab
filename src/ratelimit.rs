//! Per-client token buckets: `RATE_LIMIT_RPS` sustained, `RATE_LIMIT_BURST` at once, keyed by
//! client IP. Off when the rate is 0. A refused request is HTTP 429 with `Retry-After` (see
//! `error.rs` for why 429 rather than a 200 error body).
//!
//! Every replica keeps a local bucket (`governor`). With `REDIS_URL` set, a request the local
//! bucket allows is also checked against a bucket shared by all replicas in Redis (GCRA in one
//! Lua script, timed by the Redis server's clock), so a client cannot multiply its allowance
//! by spreading requests over replicas. The local check comes first: a client over its limit
//! on one replica is over it fleet-wide too, and is refused without a Redis round trip. When
//! Redis is unreachable or slow (more than 100 ms) the request falls back to the local bucket
//! alone (fail open to per-replica limits) and the failure is counted in
//! `sentinel_proxy_redis_errors_total`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::Config;
use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::shared::{Shared, KEY_PREFIX};

/// Longest wait for the shared bucket before falling back to the local one.
const SHARED_TIMEOUT: Duration = Duration::from_millis(100);

/// GCRA: `KEYS[1]` holds the bucket's theoretical arrival time in µs. `ARGV[1]` is the
/// emission interval (µs per token), `ARGV[2]` the burst tolerance (interval × (burst − 1)).
/// Returns 0 when a token was taken, else the µs until one is free.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now - tolerance
if wait > 0 then return math.ceil(wait) end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
";

/// The limiter, or nothing when rate limiting is off.
pub struct RateLimiter {
    local: Option<DefaultKeyedRateLimiter<IpAddr>>,
    shared: Option<SharedBucket>,
}

/// The fleet-wide bucket in Redis.
struct SharedBucket {
    redis: Arc<Shared>,
    script: redis::Script,
    interval_us: u64,
    tolerance_us: u64,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RateLimiter(enabled: {}, shared: {})", self.local.is_some(), self.shared.is_some())
    }
}

impl RateLimiter {
    /// Builds the limiter from `RATE_LIMIT_RPS` / `RATE_LIMIT_BURST`, shared through `redis`
    /// when given.
    pub fn new(config: &Config, redis: Option<Arc<Shared>>, metrics: Arc<Metrics>) -> RateLimiter {
        let Some(rps) = NonZeroU32::new(config.rate_limit_rps) else {
            return RateLimiter { local: None, shared: None };
        };
        let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(rps);
        let local = governor::RateLimiter::keyed(Quota::per_second(rps).allow_burst(burst));
        let interval_us = 1_000_000 / u64::from(rps.get());
        let shared = redis.map(|redis| SharedBucket {
            redis,
            script: redis::Script::new(GCRA),
            interval_us,
            tolerance_us: interval_us * (u64::from(burst.get()) - 1),
            metrics,
        });
        RateLimiter { local: Some(local), shared }
    }

    /// Takes one token for `client`: locally, then from the shared bucket when there is one.
    ///
    /// # Errors
    /// [`ProxyError::TooManyRequests`] with the seconds until a token is free.
    pub async fn check(&self, client: IpAddr) -> Result<(), ProxyError> {
        let Some(local) = &self.local else {
            return Ok(());
        };
        local
            .check_key(&client)
            .map_err(|not_until| too_many(client, not_until.wait_time_from(DefaultClock::default().now())))?;
        if local.len() > 100_000 {
            local.retain_recent();
        }
        match &self.shared {
            // Boxed: keeps the round trip's state out of every request's future.
            Some(shared) => Box::pin(shared.check(client)).await,
            None => Ok(()),
        }
    }
}

impl SharedBucket {
    async fn check(&self, client: IpAddr) -> Result<(), ProxyError> {
        let Some(mut conn) = self.redis.conn() else {
            return Ok(()); // not connected yet: the local bucket already decided
        };
        let key = format!("{KEY_PREFIX}ratelimit:{client}");
        let mut call = self.script.key(key);
        call.arg(self.interval_us).arg(self.tolerance_us);
        match tokio::time::timeout(SHARED_TIMEOUT, call.invoke_async::<u64>(&mut conn)).await {
            Ok(Ok(0)) => Ok(()),
            Ok(Ok(wait_us)) => Err(too_many(client, Duration::from_micros(wait_us))),
            Ok(Err(_)) | Err(_) => {
                self.metrics.redis_errors.inc();
                Ok(())
            }
        }
    }
}

fn too_many(client: IpAddr, wait: Duration) -> ProxyError {
    ProxyError::TooManyRequests {
        reason: format!("rate limit exceeded for {client}"),
        retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}
