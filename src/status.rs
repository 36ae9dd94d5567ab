//! Operator surfaces: the `/health` document (docs/observability.md#health-document) built from
//! the snapshot and counters, `/ready` (200 only with a routable backend), `/live`, `/metrics`,
//! `/validators` (the validator watch report) and `/dashboard`.
//! With `ADMIN_TOKEN` set, `/health` details, `/validators` and `/metrics` need
//! `Authorization: Bearer <token>`; `/ready`, `/live`, the bare `/health` status and the (data-free) dashboard page do not.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::integrity::{EpochReport, IntegrityStatus, NodeKind};
use crate::state::AppState;
use crate::upstream::stats::LatencySummary;
use crate::upstream::{BackendView, CircuitState};

/// The `/health` document.
#[derive(Debug, Serialize)]
pub struct HealthDoc {
    /// `healthy` (all routable), `degraded` (some), `unhealthy` (none).
    pub status: &'static str,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Server time, Unix milliseconds (the dashboard computes rates on it).
    pub now_ms: u64,
    /// Corroborated best tip.
    pub best_tip: Option<u64>,
    /// The configuration in effect.
    pub config: ConfigDoc,
    /// Request totals.
    pub totals: Totals,
    /// Every backend.
    pub backends: Vec<BackendDoc>,
}

/// The configuration in effect (`reload`).
#[derive(Debug, Serialize)]
pub struct ConfigDoc {
    /// 1 at start-up, one more for every reload that changed something.
    pub generation: u64,
    /// Unix seconds when it was loaded.
    pub loaded_at: u64,
}

/// Request totals.
#[derive(Debug, Serialize, Default)]
pub struct Totals {
    /// Request items served.
    pub requests: u64,
    /// Items answered with a gateway error.
    pub errors: u64,
    /// errors / requests.
    pub error_rate: f64,
    /// Cache hits (all tiers).
    pub cache_hits: u64,
    /// Coalesced items.
    pub coalesced: u64,
    /// Retries.
    pub retries: u64,
    /// Rate-limited requests.
    pub rate_limited: u64,
}

/// One backend in `/health`.
#[derive(Debug, Serialize)]
pub struct BackendDoc {
    /// Display name.
    pub name: String,
    /// Redacted URL.
    pub url: String,
    /// `isReady` true at the last probe.
    pub ready: bool,
    /// Routable now.
    pub routable: bool,
    /// Why not routable.
    pub reason: Option<crate::upstream::Unroutable>,
    /// Proposed tip.
    pub tip: Option<u64>,
    /// Proven tip.
    pub proven: Option<u64>,
    /// Blocks behind the corroborated tip.
    pub lag: Option<u64>,
    /// Circuit state.
    pub circuit: CircuitState,
    /// `archiver` or `pruned` (from integrity).
    pub kind: NodeKind,
    /// Node software version.
    pub version: Option<String>,
    /// Rollup version reported.
    pub rollup_version: Option<u64>,
    /// API major version the gateway routes by (from the version, else the namespace).
    pub api_major: Option<u8>,
    /// Methods the node answered `-32601` for since its last restart or upgrade (they go to
    /// other nodes).
    pub lacks_methods: Vec<&'static str>,
    /// Hash disagreement with the fleet at equal heights (`null`: agrees); see `fork.rs`.
    pub fork: Option<crate::fork::ForkState>,
    /// Request latency.
    pub latency_ms: LatencySummary,
    /// Attempts sent.
    pub requests: u64,
    /// Failed attempts.
    pub errors: u64,
    /// Requests in flight.
    pub in_flight: u32,
    /// Integrity block.
    pub integrity: IntegrityDoc,
}

/// Integrity block of one backend.
#[derive(Debug, Serialize)]
pub struct IntegrityDoc {
    /// 0..100.
    pub score: u8,
    /// perfect / good / bad / unknown.
    pub status: IntegrityStatus,
    /// History depth in epochs.
    pub depth_epochs: u64,
    /// Window epochs without records.
    pub missing_epochs: Vec<u64>,
    /// Window epochs scoring below 100.
    pub inconsistent_epochs: Vec<u64>,
    /// Unix seconds of the last successful analysis.
    pub checked_at: Option<u64>,
    /// Why the last fetch or analysis failed.
    pub error: Option<crate::error::CheckError>,
    /// Why the verdict is what it is (e.g. sentinel disabled).
    pub reason: Option<String>,
    /// Per-epoch results.
    pub epochs: Vec<EpochReport>,
}

fn backend_doc(v: &BackendView) -> BackendDoc {
    let b = &v.backend;
    let i = &v.integrity;
    BackendDoc {
        name: b.name.to_string(),
        url: b.shown_url.clone(),
        ready: v.health.ready,
        routable: v.routable(),
        reason: v.reason(),
        tip: v.health.tip,
        proven: v.health.proven,
        lag: v.health.lag,
        circuit: b.circuit.state(),
        kind: i.verdict.kind,
        version: v.health.package_version.clone(),
        rollup_version: v.health.rollup_version,
        api_major: Some(b.api_major()).filter(|&m| m > 0),
        lacks_methods: b.lacking_methods(),
        fork: v.health.fork.clone(),
        latency_ms: b.stats.latency(),
        requests: b.stats.requests(),
        errors: b.stats.errors(),
        in_flight: b.stats.in_flight(),
        integrity: IntegrityDoc {
            score: i.verdict.score,
            status: i.verdict.status,
            depth_epochs: i.verdict.depth_epochs,
            missing_epochs: i.verdict.missing_epochs.clone(),
            inconsistent_epochs: i.verdict.inconsistent_epochs.clone(),
            checked_at: i.checked_at,
            error: i.error.clone(),
            reason: i.verdict.reason.clone(),
            epochs: i.verdict.epochs.clone(),
        },
    }
}

/// Builds the `/health` document.
pub fn health_doc(app: &AppState) -> HealthDoc {
    let snap = app.pool.snapshot();
    let backends: Vec<BackendDoc> = snap.backends.iter().map(backend_doc).collect();
    let routable = backends.iter().filter(|b| b.routable).count();
    let status = match routable {
        0 => "unhealthy",
        n if n == backends.len() => "healthy",
        _ => "degraded",
    };
    HealthDoc {
        status,
        uptime_s: app.started.elapsed().as_secs(),
        now_ms: crate::clock::unix_ms(),
        best_tip: snap.best_tip,
        config: {
            let s = app.config();
            ConfigDoc { generation: s.generation, loaded_at: s.loaded_at }
        },
        totals: totals(app),
        backends,
    }
}

fn totals(app: &AppState) -> Totals {
    let m = &app.metrics;
    let requests = m.served.get();
    let errors = m.failed.get();
    let cache_hits = [crate::metrics::Tier::Memory, crate::metrics::Tier::Redis]
        .into_iter()
        .map(|tier| m.cache_hits.get_or_create(&crate::metrics::TierLabel { tier }).get())
        .sum();
    Totals {
        requests,
        errors,
        error_rate: if requests == 0 { 0.0 } else { (errors as f64 / requests as f64 * 10_000.0).round() / 10_000.0 },
        cache_hits,
        coalesced: m.coalesced.get(),
        retries: m.retries.get(),
        rate_limited: m.rate_limited.get(),
    }
}

fn authorized(app: &AppState, headers: &HeaderMap) -> bool {
    let config = app.config();
    let Some(token) = &config.admin_token else {
        return true;
    };
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    given.and_then(bearer_credentials).is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
}

/// The credentials of a `Bearer` authorization value. The scheme is case-insensitive (RFC 9110
/// §11.1: `bearer`, `BEARER` are the same scheme) and may be followed by more than one space.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim_start_matches(' '))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, "Authorization: Bearer <ADMIN_TOKEN> required\n").into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// `GET /health`.
pub async fn health(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let doc = health_doc(&app);
    let code = if doc.status == "unhealthy" { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    if !authorized(&app, &headers) {
        return (code, axum::Json(serde_json::json!({"status": doc.status}))).into_response();
    }
    (code, axum::Json(doc)).into_response()
}

/// `GET /ready`: 200 when at least one backend is routable.
pub async fn ready(State(app): State<AppState>) -> Response {
    let snap = app.pool.snapshot();
    let n = snap.backends.iter().filter(|v| v.routable()).count();
    if n > 0 {
        (StatusCode::OK, format!("ready: {n} routable backend(s)\n")).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no routable backend\n").into_response()
    }
}

/// `GET /live`.
pub async fn live() -> &'static str {
    "live\n"
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if !authorized(&app, &headers) {
        return unauthorized();
    }
    app.metrics.observe_snapshot(&app.pool.snapshot());
    app.metrics.observe_validators(&app.validators.report());
    let mut r = app.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// `GET /validators`: the validator watch report (README "Validator watch"); with
/// `ADMIN_TOKEN` set it needs the Bearer token, like `/health` details.
pub async fn validators(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if !authorized(&app, &headers) {
        return unauthorized();
    }
    axum::Json(&*app.validators.report()).into_response()
}

/// The dashboard page, embedded in the binary.
const DASHBOARD: &str = concat!(
    include_str!("dashboard/head.html"),
    include_str!("dashboard/style.css"),
    include_str!("dashboard/body.html"),
    include_str!("dashboard/app.js"),
    include_str!("dashboard/end.html"),
);

/// `GET /dashboard`. The page itself holds no data, so it is served to anyone; everything it
/// shows comes from `/health`, which asks for the `ADMIN_TOKEN` (the page prompts for it and
/// sends it as a Bearer token). A browser cannot add a header to a navigation, so this is how
/// the dashboard honours the token.
pub async fn dashboard() -> Response {
    let mut r = Html(DASHBOARD).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
