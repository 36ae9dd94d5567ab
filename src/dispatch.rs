//! Sending a group of calls to the fleet: pick a node, claim its circuit, send the calls as one
//! body (one object, or one batch with internal ids 0..n), and fail over to a *different* node on
//! connect errors, timeouts, 5xx and non-JSON-RPC bodies, up to `MAX_RETRIES` within the request
//! deadline. Writes are retried only when they never reached a node.
//!
//! Calls go only to nodes that serve them, under the name that node answers ([`compat`]). A
//! `-32601` answer teaches the node that it lacks the method *as sent*, and the call is sent
//! to another node that may serve it; it is not a node failure. When no node is left, the
//! client gets the last node's `-32601`, once. A group no single node can serve whole is split
//! into its calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::compat;
pub use crate::compat::Outbound;
use crate::error::ProxyError;
use crate::forward::{self, ForwardError, Reply};
use crate::jsonrpc::{self, Outcome};
use crate::metrics::{Metrics, UpstreamErrorLabels};
use crate::selection::{self, Needs, Route};
use crate::upstream::{Backend, CircuitState, Pool, Snapshot};
use crate::wire;

/// One client request as it travels down: where it came in, until when it may take, and its id
/// (sent to nodes as `x-request-id`).
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The surface it came in on.
    pub route: Route,
    /// The whole-request deadline.
    pub deadline: Instant,
    /// The request id.
    pub request_id: &'a str,
}

/// What a group got back: the one answer type of the request path (a dispatch's result, and
/// what a coalescing leader publishes to the callers waiting on it).
#[derive(Clone, Debug)]
pub struct Delivered {
    /// One outcome per call, in order.
    pub outcomes: Vec<Outcome>,
    /// Name of the node that answered.
    pub backend: Arc<str>,
    /// Index of that node.
    pub backend_index: usize,
    /// The HTTP status (400 for a node's own error answer to a single call).
    pub status: http::StatusCode,
    /// The node's `x-aztec-*` headers.
    pub headers: forward::NodeHeaders,
    /// `/pruned` fell back to an archiver.
    pub fallback: bool,
    /// The answer's share of `MAX_BUFFERED_BYTES`, held until the client's response is written.
    pub charge: forward::Charge,
}

impl Delivered {
    /// Call `i`'s answer on its own, with the HTTP status it gets alone.
    pub fn one(&self, i: usize, status: http::StatusCode) -> Delivered {
        Delivered {
            outcomes: vec![self.outcomes[i].clone()],
            backend: self.backend.clone(),
            backend_index: self.backend_index,
            status,
            headers: Arc::clone(&self.headers),
            fallback: self.fallback,
            charge: self.charge.clone(),
        }
    }
}

/// Everything a dispatch needs, borrowed from the gateway state.
#[derive(Clone)]
pub struct Dispatcher<'a> {
    /// Backend pool.
    pub pool: &'a Pool,
    /// HTTP client (this thread's pool).
    pub client: forward::HttpClient,
    /// Metrics.
    pub metrics: &'a Metrics,
    /// Extra attempts.
    pub max_retries: u32,
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
    /// Whole-request deadline (for error messages).
    pub request_timeout: Duration,
    /// Hedge accounting.
    pub budget: &'a HedgeBudget,
}

/// Hedges never fire sooner than this, whatever the p95 (on loopback p95 can be ~100 µs).
pub const MIN_HEDGE_DELAY: Duration = Duration::from_millis(1);

/// EWMA sample a failed attempt counts as at least (so P2C steers away from a failing node).
const FAILURE_PENALTY: Duration = Duration::from_millis(100);

/// Counts reads and hedges so hedges stay ≤ 10 % of reads.
#[derive(Debug, Default)]
pub struct HedgeBudget {
    reads: AtomicU64,
    hedges: AtomicU64,
}

impl HedgeBudget {
    /// Whether one more hedge keeps hedges ≤ 10 % of reads.
    fn allows(&self) -> bool {
        self.hedges.load(Ordering::Relaxed) * 10 < self.reads.load(Ordering::Relaxed)
    }
}

impl Dispatcher<'_> {
    /// Sends `calls` with failover until `deadline`.
    ///
    /// # Errors
    /// [`ProxyError::NoRoute`], [`ProxyError::Upstream`] or [`ProxyError::Deadline`].
    pub async fn dispatch(
        &self,
        ctx: Ctx<'_>,
        calls: &[Outbound],
        mut needs: Needs,
        write: bool,
    ) -> Result<Delivered, ProxyError> {
        let Ctx { route, deadline, request_id } = ctx;
        let mut last_error: Option<ProxyError> = None;
        let mut attempts = 0;
        loop {
            let snapshot = self.pool.snapshot();
            let Some(pick) = selection::pick(&snapshot, route, &needs, calls) else {
                if let Some(e) = last_error {
                    return Err(e);
                }
                // Nodes are routable, but none serves every call of the group.
                if selection::pick(&snapshot, route, &needs, &[]).is_some() {
                    if calls.len() > 1 {
                        return Box::pin(self.split(ctx, calls, needs, write)).await;
                    }
                    return Err(ProxyError::MethodNotFound(calls[0].method.clone()));
                }
                return Err(no_route(&snapshot, route));
            };
            let backend = Arc::clone(&snapshot.backends[pick.index].backend);
            needs.exclude.push(backend.index);
            needs.sticky = None;
            if !backend.circuit.try_acquire() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ProxyError::Deadline(self.request_timeout.as_millis()));
            }
            let timeout = self.attempt_timeout.min(deadline - now);
            // Writes are never hedged, and with one node there is nowhere to hedge to.
            let (answered, result) = if write || snapshot.backends.len() < 2 {
                (Arc::clone(&backend), self.exchange(&backend, calls, request_id, timeout).await)
            } else {
                self.attempt_hedged(ctx, &needs, &backend, calls, timeout).await
            };
            match result {
                Ok((reply, outcomes)) => {
                    answered.circuit.on_success();
                    let delivered = Delivered {
                        outcomes,
                        backend: answered.name.clone(),
                        backend_index: answered.index,
                        status: reply.status,
                        headers: reply.aztec_headers,
                        fallback: pick.fallback,
                        charge: reply.charge,
                    };
                    needs.exclude.push(answered.index);
                    return Ok(self.elsewhere_if_lacking(ctx, calls, needs, write, delivered).await);
                }
                Err(e) if !e.is_node_fault() => {
                    // The node answered; the answer is just not one we can take.
                    backend.circuit.on_success();
                    return Err(ProxyError::Upstream { backend: backend.name.to_string(), source: e });
                }
                Err(e) => {
                    backend.stats.record_error();
                    backend.stats.penalize(now.elapsed().max(FAILURE_PENALTY));
                    let label = UpstreamErrorLabels { backend: backend.name.to_string(), kind: e.kind() };
                    self.metrics.upstream_errors.get_or_create(&label).inc();
                    if backend.circuit.on_failure() {
                        tracing::warn!(backend = %backend.name, error = %e, "circuit opened");
                    }
                    tracing::debug!(backend = %backend.name, error = %e, "attempt failed");
                    let reached = e.reached_node();
                    last_error = Some(ProxyError::Upstream { backend: backend.name.to_string(), source: e });
                    if (write && reached) || attempts >= self.max_retries {
                        return Err(last_error.unwrap_or(ProxyError::Deadline(self.request_timeout.as_millis())));
                    }
                    attempts += 1;
                    self.metrics.retries.inc();
                }
            }
        }
    }

    /// One attempt, plus — for reads — a hedged copy to another node once the first has waited
    /// longer than its node's recent p95 (at least [`MIN_HEDGE_DELAY`]); the first good answer
    /// wins and the loser is dropped without counting as a node error. Hedges are bounded to
    /// 10 % of reads by [`HedgeBudget`], and only go between nodes whose circuits are closed
    /// (a dropped half-open probe would leave its circuit undecided).
    async fn attempt_hedged(
        &self,
        ctx: Ctx<'_>,
        needs: &Needs,
        primary: &Arc<Backend>,
        calls: &[Outbound],
        timeout: Duration,
    ) -> (Arc<Backend>, Result<(Reply, Vec<Outcome>), ForwardError>) {
        self.budget.reads.fetch_add(1, Ordering::Relaxed);
        // Pinned once and always awaited in place: awaiting it by value on one path would give
        // the future a second copy of this (large) state.
        let first = self.exchange(primary, calls, ctx.request_id, timeout);
        tokio::pin!(first);
        // No timer when the budget is spent: no hedge could be sent anyway.
        let delay = match primary.stats.p95_us() {
            Some(p95)
                if primary.circuit.state() == CircuitState::Closed
                    && primary.stats.requests() >= 20
                    && self.budget.allows() =>
            {
                Duration::from_micros(u64::from(p95)).max(MIN_HEDGE_DELAY)
            }
            _ => return (Arc::clone(primary), first.await),
        };
        tokio::select! {
            r = &mut first => return (Arc::clone(primary), r),
            () = tokio::time::sleep(delay) => {}
        }
        let Some(second) = self.hedge_target(ctx.route, needs, calls) else {
            return (Arc::clone(primary), first.await);
        };
        self.metrics.hedges.inc();
        let hedged_on = Arc::clone(&second);
        // Boxed: the hedge is rare, and inline it would double the size of every read's future
        // (which is moved, byte for byte, on every request).
        let mut hedge = Box::pin(self.exchange(&hedged_on, calls, ctx.request_id, timeout));
        tokio::select! {
            r = &mut first => match r {
                Ok(ok) => (Arc::clone(primary), Ok(ok)),
                Err(e) => match hedge.await {
                    Ok(ok) => (second, Ok(ok)),
                    Err(_) => (Arc::clone(primary), Err(e)),
                },
            },
            r = &mut hedge => match r {
                // A hedge that answers `-32601` knows less than the slower node may: that node's
                // answer is awaited (the `-32601` still stands if it fails).
                Ok(ok) if ok.1.iter().any(not_found) => match first.await {
                    Ok(answer) => (Arc::clone(primary), Ok(answer)),
                    Err(_) => (second, Ok(ok)),
                },
                Ok(ok) => {
                    primary.stats.penalize(delay * 2);
                    (second, Ok(ok))
                }
                Err(_) => (Arc::clone(primary), first.await),
            },
        }
    }

    /// Another closed-circuit node for a hedge, within the budget.
    fn hedge_target(&self, route: Route, needs: &Needs, calls: &[Outbound]) -> Option<Arc<Backend>> {
        if !self.budget.allows() {
            return None;
        }
        let snapshot = self.pool.snapshot();
        let pick = selection::pick(&snapshot, route, needs, calls)?;
        let b = Arc::clone(&snapshot.backends[pick.index].backend);
        if b.circuit.state() != CircuitState::Closed {
            return None;
        }
        self.budget.hedges.fetch_add(1, Ordering::Relaxed);
        Some(b)
    }

    /// Calls the node answered `-32601` for: remembers that it lacks them (as sent), and sends
    /// them to another node that may serve them. Without one, the node's answers stand.
    async fn elsewhere_if_lacking(
        &self,
        ctx: Ctx<'_>,
        calls: &[Outbound],
        needs: Needs,
        write: bool,
        mut delivered: Delivered,
    ) -> Delivered {
        let lacking: Vec<usize> = (0..calls.len()).filter(|&i| not_found(&delivered.outcomes[i])).collect();
        if lacking.is_empty() {
            return delivered;
        }
        let backend = Arc::clone(&self.pool.snapshot().backends[delivered.backend_index].backend);
        for &i in &lacking {
            if let Some(m) = compat::lacked_method(&backend, &calls[i]) {
                if backend.mark_lacking(m) {
                    tracing::info!(backend = %backend.name, method = m.name, "node lacks method; routing it elsewhere");
                }
            }
        }
        let again: Vec<Outbound> = lacking.iter().map(|&i| calls[i].clone()).collect();
        let retried = Box::pin(self.dispatch(ctx, &again, needs, write)).await;
        if let Ok(other) = retried {
            if calls.len() == 1 {
                return other;
            }
            for (i, o) in lacking.into_iter().zip(other.outcomes) {
                delivered.outcomes[i] = o;
            }
        }
        delivered
    }

    /// Sends each call of a group that no single node serves whole on its own, and puts the
    /// answers back together (named after the first call's node).
    async fn split(
        &self,
        ctx: Ctx<'_>,
        calls: &[Outbound],
        needs: Needs,
        write: bool,
    ) -> Result<Delivered, ProxyError> {
        let each = calls.iter().map(|c| {
            let needs = needs.clone();
            async move { self.dispatch(ctx, std::slice::from_ref(c), needs, write).await }
        });
        let results = futures::future::join_all(each).await;
        let mut outcomes = Vec::with_capacity(calls.len());
        let mut first: Option<Delivered> = None;
        for r in results {
            match r {
                Ok(mut d) => {
                    outcomes.push(d.outcomes.remove(0));
                    first.get_or_insert(d);
                }
                Err(e) => outcomes.push(e.to_outcome()),
            }
        }
        let mut d = first.ok_or_else(|| ProxyError::MethodNotFound(calls[0].method.clone()))?;
        d.outcomes = outcomes;
        d.status = http::StatusCode::OK;
        Ok(d)
    }

    async fn exchange(
        &self,
        backend: &Backend,
        calls: &[Outbound],
        request_id: &str,
        timeout: Duration,
    ) -> Result<(Reply, Vec<Outcome>), ForwardError> {
        let body = wire::encode_for(backend, calls);
        let _guard = backend.stats.start();
        let started = Instant::now();
        let exchanged = wire::exchange(&self.client, backend, body, calls.len(), request_id, timeout, None).await;
        let (reply, outcomes) = exchanged?;
        let elapsed = started.elapsed();
        backend.stats.record_latency(elapsed);
        let method = Metrics::method_label(calls.first().and_then(Outbound::info));
        self.metrics.observe_latency(method, &backend.name, elapsed.as_secs_f64());
        Ok((reply, outcomes))
    }
}

/// Whether a node answered `-32601` (method not found).
fn not_found(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Error { code: jsonrpc::METHOD_NOT_FOUND, .. })
}

/// The 503 error, listing why each backend cannot serve `route`.
pub fn no_route(snapshot: &Snapshot, route: Route) -> ProxyError {
    let why: Vec<String> = snapshot
        .backends
        .iter()
        .map(|v| match v.reason() {
            Some(r) => format!("{}: {r}", v.backend.name),
            None => format!(
                "{}: {} {}",
                v.backend.name,
                v.integrity.verdict.kind.as_str(),
                v.integrity.verdict.status.as_str(),
            ),
        })
        .collect();
    let why = if why.is_empty() { "no backends configured".to_owned() } else { why.join("; ") };
    let route = match route {
        Route::Any => "/",
        Route::Archiver => "/archiver (needs an archiver with integrity perfect or good)",
        Route::Pruned => "/pruned",
    };
    ProxyError::NoRoute { route, why }
}
