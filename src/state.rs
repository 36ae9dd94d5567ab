//! The shared state of one gateway, [`AppState`]: what every request, operator surface and
//! affinity rule reads. It lives below the modules that read it (`affinity`, `proxy`, `status`,
//! `server`) and above the parts it holds (pool, cache, limiter, metrics), so no module imports
//! state from a layer above it.
//!
//! `gateway::build` assembles it (Redis connection, limiter, cache); nothing here does I/O.
//! Every part is shared behind one `Arc` and is either immutable after start-up (`config`,
//! `policy`) or synchronises itself (atomics, `moka`, the pool's `ArcSwap`).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::affinity::Sticky;
use crate::cache::Cache;
use crate::coalesce::Coalescer;
use crate::config::Config;
use crate::dispatch::{Dispatcher, HedgeBudget};
use crate::forward;
use crate::methods::Policy;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::upstream::Pool;
use crate::validators::ValidatorWatch;

/// Shared state of one gateway; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Inner {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Backend pool (read per request, published by the monitor).
    pub pool: Arc<Pool>,
    /// Method allow / deny policy.
    pub policy: Policy,
    /// Metrics registry and handles.
    pub metrics: Arc<Metrics>,
    /// Read-your-writes pins (owned and maintained by `affinity`).
    pub sticky: Sticky,
    /// Requests served at once (overload → 429).
    pub in_flight: Arc<Semaphore>,
    /// Per-client rate limiter.
    pub limiter: RateLimiter,
    /// Answer cache (memory + Redis).
    pub cache: Cache,
    /// In-flight identical reads.
    pub coalescer: Arc<Coalescer>,
    /// Hedge accounting (≤ 10 % extra reads).
    pub hedge_budget: HedgeBudget,
    /// When the gateway started.
    pub started: Instant,
    /// The memory bound on node answers (`MAX_RESPONSE_BYTES`, `MAX_BUFFERED_BYTES`).
    pub answers: Arc<forward::AnswerBudget>,
    /// The validator watch report (published by the monitor after each integrity pass).
    pub validators: Arc<ValidatorWatch>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AsRef<Sticky> for AppState {
    fn as_ref(&self) -> &Sticky {
        &self.0.sticky
    }
}

impl AppState {
    /// Shares the assembled parts (see `gateway::build`).
    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }

    /// The failover dispatcher over this state.
    pub fn dispatcher(&self) -> Dispatcher<'_> {
        Dispatcher {
            pool: &self.pool,
            client: forward::local_client(),
            metrics: &self.metrics,
            max_retries: self.config.max_retries,
            attempt_timeout: self.config.attempt_timeout,
            request_timeout: self.config.request_timeout,
            budget: &self.hedge_budget,
        }
    }
}
