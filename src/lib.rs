//! sentinel-proxy: an integrity-verifying JSON-RPC gateway and load balancer for Aztec nodes.
//!
//! # Layout (dependency order, bottom-up)
//! - [`clock`]: wall-clock Unix timestamps.
//! - [`config`]: environment / `.env` / TOML → validated [`config::Config`]; every key once in
//!   [`config::KEYS`].
//! - [`jsonrpc`], [`methods`], [`error`]: envelopes, the one method table, the one error mapping.
//! - [`compat`]: API generations, which node serves which call, and under which name.
//! - [`integrity`]: pure sentinel-history analysis (scores, kinds, consensus);
//!   [`validators`]: the watched validators' duties judged across nodes.
//! - [`upstream`]: backends, live counters, circuit breakers, the `ArcSwap` snapshot pool.
//! - [`health`], [`monitor`]: probing nodes; the one background writer of the pool;
//!   [`fork`]: hash agreement across nodes at equal heights; [`lease`]: one analysis per node
//!   for all replicas sharing a Redis.
//! - [`selection`]: pure choice of a node (tiers + power of two choices).
//! - [`forward`], [`wire`], [`dispatch`]: the pooled client; JSON-RPC to one node (encode, send,
//!   match answers); one group of calls with failover.
//! - [`cache`], [`coalesce`], [`affinity`]: what may be shared, and what must stick to a node
//!   (affinity owns its pin table); [`shared`]: the Redis connection replicas share (cache
//!   tier 2, rate limits); [`ratelimit`], [`metrics`]: limits and counters.
//! - [`state`]: [`state::AppState`], the shared state every request and operator surface reads.
//! - [`proxy`]: the request path; [`status`]: operator insight.
//! - [`reload`]: configuration reload without a restart (SIGHUP, `--config` file changes).
//! - [`server`]: HTTP surfaces; [`gateway`]: wiring (state, monitor, workers) and shutdown;
//!   [`simulator`]: the simulated Aztec node.

pub mod affinity;
pub mod cache;
pub mod clock;
pub mod coalesce;
pub mod compat;
pub mod config;
pub mod deadline;
pub mod dispatch;
pub mod error;
pub mod fork;
pub mod forward;
pub mod gateway;
pub mod health;
pub mod integrity;
pub mod jsonrpc;
pub mod lease;
pub mod methods;
pub mod metrics;
pub mod monitor;
pub mod proxy;
pub mod ratelimit;
pub mod reload;
pub mod selection;
pub mod server;
pub mod shared;
pub mod simulator;
pub mod state;
pub mod status;
pub mod upstream;
pub mod validators;
pub mod wire;
