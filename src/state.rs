//! The shared state of one gateway, [`AppState`]: what every request, operator surface and
//! affinity rule reads. It lives below the modules that read it (`affinity`, `proxy`, `status`,
//! `server`) and above the parts it holds (pool, cache, limiter, metrics), so no module imports
//! state from a layer above it.
//!
//! `gateway::build` assembles it (Redis connection, limiter, cache); nothing here does I/O.
//! Every part is shared behind one `Arc` and synchronises itself (atomics, `moka`, the pool's
//! `ArcSwap`). The configuration and what is derived from it (the method policy) are one
//! [`Settings`] behind one `ArcSwap`, replaced whole by a reload (`reload`); a request reads it
//! through [`AppState::config`].

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, Guard};

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
    /// The configuration in effect and what derives from it (replaced whole by `reload`).
    pub settings: ArcSwap<Settings>,
    /// Backend pool (read per request, published by the monitor).
    pub pool: Arc<Pool>,
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

/// One generation of the configuration: the validated [`Config`] (fields readable through
/// `Deref`), the method policy built from it, and when it was loaded.
#[derive(Debug)]
pub struct Settings {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Method allow / deny policy.
    pub policy: Policy,
    /// 1 at start-up, one more for every configuration a reload applied.
    pub generation: u64,
    /// Unix seconds when this generation was loaded.
    pub loaded_at: u64,
}

impl Settings {
    /// The settings of `config`, generation `generation`, loaded now.
    pub fn new(config: Arc<Config>, generation: u64) -> Settings {
        let policy = Policy::new(&config.allow_methods, &config.deny_methods);
        Settings { config, policy, generation, loaded_at: crate::clock::unix_secs() }
    }
}

impl Deref for Settings {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.config
    }
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

    /// The settings in effect now (configuration and method policy): one consistent
    /// generation, cheap to take (no reference count touched); do not hold it across an
    /// `.await`.
    pub fn config(&self) -> Guard<Arc<Settings>> {
        self.settings.load()
    }

    /// The failover dispatcher over this state.
    pub fn dispatcher(&self) -> Dispatcher<'_> {
        let config = self.config();
        Dispatcher {
            pool: &self.pool,
            client: forward::local_client(),
            metrics: &self.metrics,
            max_retries: config.max_retries,
            attempt_timeout: config.attempt_timeout,
            request_timeout: config.request_timeout,
            budget: &self.hedge_budget,
        }
    }
}
