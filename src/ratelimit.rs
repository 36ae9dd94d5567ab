//! Per-client token buckets: `RATE_LIMIT_RPS` sustained, `RATE_LIMIT_BURST` at once, keyed by
//! client: an IPv4 address, or the IPv6 network of `RATE_LIMIT_IPV6_PREFIX` bits (default /64,
//! since one host commonly holds a whole /64). Off when the rate is 0. A request takes as many
//! tokens as it weighs (`methods::cost`, summed over a batch's items), so a batch cannot buy
//! many node calls for the price of one; a request weighing more than the whole burst is
//! refused at once (it could never pass). A refused request is HTTP 429 with `Retry-After` (see
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
/// emission interval (µs per token), `ARGV[2]` the burst tolerance (interval × (burst − 1)),
/// `ARGV[3]` the tokens wanted. Returns 0 when they were taken, else the µs until they are free.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat + (n - 1) * interval - now - tolerance
if wait > 0 then return math.ceil(wait) end
local new_tat = tat + n * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
";

/// The limiter, or nothing when rate limiting is off.
pub struct RateLimiter {
    local: Option<DefaultKeyedRateLimiter<IpAddr>>,
    shared: Option<SharedBucket>,
    /// `RATE_LIMIT_BURST`: the most a request may weigh.
    burst: u32,
    /// `RATE_LIMIT_IPV6_PREFIX`.
    ipv6_prefix: u8,
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
            return RateLimiter { local: None, shared: None, burst: 0, ipv6_prefix: config.rate_limit_ipv6_prefix };
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
        RateLimiter { local: Some(local), shared, burst: burst.get(), ipv6_prefix: config.rate_limit_ipv6_prefix }
    }

    /// Takes `weight` tokens for `client` (a request's weight, at least 1): locally, then from
    /// the shared bucket when there is one.
    ///
    /// # Errors
    /// [`ProxyError::TooManyRequests`] with the seconds until the tokens are free, or at once
    /// when `weight` exceeds `RATE_LIMIT_BURST` (such a request can never pass).
    pub async fn check(&self, client: IpAddr, weight: u32) -> Result<(), ProxyError> {
        let Some(local) = &self.local else {
            return Ok(());
        };
        let key = client_key(client, self.ipv6_prefix);
        let n = NonZeroU32::new(weight).unwrap_or(NonZeroU32::MIN);
        if n.get() > self.burst {
            let reason = format!(
                "request weighs {n} (batch items by method cost, see README), more than RATE_LIMIT_BURST {}; \
                 split it",
                self.burst
            );
            return Err(ProxyError::TooManyRequests { reason, retry_after_s: 1 });
        }
        match local.check_key_n(&key, n) {
            Ok(Ok(())) => {}
            Ok(Err(not_until)) => {
                return Err(too_many(key, self.ipv6_prefix, not_until.wait_time_from(DefaultClock::default().now())))
            }
            Err(_) => return Err(too_many(key, self.ipv6_prefix, Duration::from_secs(1))),
        }
        if local.len() > 100_000 {
            local.retain_recent();
        }
        match &self.shared {
            // Boxed: keeps the round trip's state out of every request's future.
            Some(shared) => Box::pin(shared.check(key, self.ipv6_prefix, n.get())).await,
            None => Ok(()),
        }
    }
}

/// The bucket a client address belongs to: an IPv4 address (IPv4-mapped IPv6 included) as
/// is, an IPv6 address with all but its first `prefix` bits cleared.
pub fn client_key(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        v4 => v4,
    }
}

/// A bucket's name for messages and Redis keys: `192.0.2.1`, `2001:db8::/64`.
fn bucket_name(key: IpAddr, prefix: u8) -> String {
    match key {
        IpAddr::V6(_) if prefix < 128 => format!("{key}/{prefix}"),
        _ => key.to_string(),
    }
}

impl SharedBucket {
    async fn check(&self, key: IpAddr, prefix: u8, n: u32) -> Result<(), ProxyError> {
        let Some(mut conn) = self.redis.conn() else {
            return Ok(()); // not connected yet: the local bucket already decided
        };
        let mut call = self.script.key(format!("{KEY_PREFIX}ratelimit:{}", bucket_name(key, prefix)));
        call.arg(self.interval_us).arg(self.tolerance_us).arg(n);
        match tokio::time::timeout(SHARED_TIMEOUT, call.invoke_async::<u64>(&mut conn)).await {
            Ok(Ok(0)) => Ok(()),
            Ok(Ok(wait_us)) => Err(too_many(key, prefix, Duration::from_micros(wait_us))),
            Ok(Err(_)) | Err(_) => {
                self.metrics.redis_errors.inc();
                Ok(())
            }
        }
    }
}

fn too_many(key: IpAddr, prefix: u8, wait: Duration) -> ProxyError {
    ProxyError::TooManyRequests {
        reason: format!("rate limit exceeded for {}", bucket_name(key, prefix)),
        retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_key(ip("2001:db8::1"), 64), ip("2001:db8::"));
        assert_eq!(client_key(ip("2001:db8::ffff:1234"), 64), client_key(ip("2001:db8::2"), 64));
        assert_ne!(client_key(ip("2001:db8:0:1::1"), 64), client_key(ip("2001:db8::1"), 64));
        assert_eq!(client_key(ip("2001:db8:ab:cd::1"), 48), ip("2001:db8:ab::"));
        assert_eq!(client_key(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        assert_eq!(client_key(ip("198.51.100.7"), 64), ip("198.51.100.7"), "IPv4 per address");
        assert_eq!(client_key(ip("::ffff:198.51.100.7"), 64), ip("198.51.100.7"), "IPv4-mapped is IPv4");
        assert_eq!(bucket_name(client_key(ip("2001:db8::1"), 64), 64), "2001:db8::/64");
    }

    #[tokio::test]
    async fn a_request_takes_its_weight_and_one_over_the_burst_is_refused_at_once() {
        let mut config = Config::for_tests(&["http://127.0.0.1:1"]);
        (config.rate_limit_rps, config.rate_limit_burst) = (1, 10);
        let limiter = RateLimiter::new(&config, None, Arc::new(Metrics::new()));
        let client = "192.0.2.1".parse().unwrap();
        let over = limiter.check(client, 11).await.unwrap_err().to_string();
        assert!(over.contains("more than RATE_LIMIT_BURST 10"), "{over}");
        limiter.check(client, 6).await.unwrap();
        assert!(limiter.check(client, 6).await.is_err(), "6 + 6 > 10");
        limiter.check(client, 4).await.unwrap();
        assert!(limiter.check(client, 1).await.is_err(), "the burst is spent");
    }
}
