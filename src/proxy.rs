//! The request path, as one straight line: parse → per-item policy → cache → coalesce → group
//! → dispatch (with failover and hedging) → answers in request order with the client's ids.
//! Each batch item is allowed, cached, coalesced and routed on its own; items that can share a
//! node go to it as one batch, while writes, sticky receipt look-ups and historical-state reads
//! form their own groups.

use std::sync::Arc;

use http::StatusCode;
use serde_json::value::RawValue;
use smallvec::SmallVec;
use tokio::time::Instant;

use crate::affinity;
use crate::cache::{self, Entry, Rule};
use crate::coalesce::{self, LeaderGuard, Published, Role};
use crate::dispatch::{Ctx, Delivered, Outbound};
use crate::error::ProxyError;
use crate::jsonrpc::{self, Body, BodyError, Item, Outcome};
use crate::methods::{self, Class, MethodInfo};
use crate::metrics::{Metrics, ReasonLabel};
use crate::selection::{Needs, Route};
use crate::state::AppState;

/// The gateway's answer to one HTTP request.
#[derive(Debug, Default)]
pub struct RpcResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Vec<u8>,
    /// Names of the nodes that answered (for `x-sentinel-backend`); one, as a rule.
    pub backends: SmallVec<[Arc<str>; 1]>,
    /// The answering node's `x-aztec-*` headers.
    pub headers: crate::forward::NodeHeaders,
    /// `/pruned` fell back to an archiver.
    pub fallback: bool,
    /// Every item came from the cache.
    pub cached: bool,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
    /// The RPC method(s), for the request's log line (`m` or `m +N more`).
    pub methods: String,
    /// The first gateway error, for the log line.
    pub error: Option<String>,
    /// The budget charges of the node answers the body was made from (kept until it is written).
    pub charges: SmallVec<[crate::forward::Charge; 1]>,
}

impl RpcResponse {
    /// A whole-request gateway error (single error object, `id: null`).
    pub fn error(err: &ProxyError) -> RpcResponse {
        let mut body = Vec::new();
        jsonrpc::encode_answer(&mut body, Some(null_id()), &err.to_outcome());
        let retry_after = match err {
            ProxyError::TooManyRequests { retry_after_s, .. } => Some(*retry_after_s),
            ProxyError::Overloaded => Some(1),
            _ => None,
        };
        RpcResponse { status: err.status(), body, retry_after, error: Some(err.to_string()), ..RpcResponse::default() }
    }
}

fn null_id() -> &'static RawValue {
    serde_json::from_str("null").expect("null is json")
}

/// One answer slot of the client's body.
struct Slot {
    id: Option<Box<RawValue>>,
    method: String,
    /// The method's table row (`None` outside the table), for its metrics label.
    info: Option<&'static MethodInfo>,
    result: Option<Result<Outcome, ProxyError>>,
    backend: Option<Arc<str>>,
    /// Node HTTP status, for single requests.
    status: StatusCode,
    from_cache: bool,
}

impl Slot {
    /// About how many bytes this slot's answer takes (sizes the response buffer once).
    fn answer_len_hint(&self) -> usize {
        let result = match &self.result {
            Some(Ok(Outcome::Result(Some(r)))) => r.get().len(),
            Some(Ok(Outcome::Error { raw, .. })) => raw.get().len(),
            _ => 128,
        };
        result + self.id.as_ref().map_or(4, |id| id.get().len()) + 40
    }
}

/// An admitted call on its way to a node.
struct Pending {
    slot: usize,
    call: Outbound,
    info: Option<&'static MethodInfo>,
    needs: Needs,
    write: bool,
    rule: Rule,
    key: Option<Arc<str>>,
    leader: Option<LeaderGuard>,
}

/// A set of calls that go to one node together.
#[derive(Default)]
struct Group {
    members: Vec<Pending>,
}

/// Serves one JSON-RPC body arriving on `route`, already parsed ([`jsonrpc::parse_body`]).
pub async fn handle(app: &AppState, route: Route, body: Result<Body, BodyError>, request_id: &str) -> RpcResponse {
    // The settings this function reads, in one load (each `config()` is an `arc_swap` load).
    let (timeout, max_batch, volatile) = {
        let config = app.config();
        (config.request_timeout, config.max_batch, config.cache_volatile)
    };
    let ctx = Ctx { route, deadline: Instant::now() + timeout, request_id };
    // A single call is not put in a list of its own.
    let (single, items, batch) = match body {
        Ok(Body::Single(i)) => (Some(i), Vec::new(), false),
        Ok(Body::Batch(v)) if v.len() > max_batch => {
            let msg = format!("Batch request exceeds maximum allowed size of {max_batch}");
            return reject(app, &ProxyError::InvalidRequest(msg));
        }
        Ok(Body::Batch(v)) => (None, v, true),
        Err(BodyError::Parse(m)) => return reject(app, &ProxyError::Parse(m)),
        Err(BodyError::Invalid(m)) => return reject(app, &ProxyError::InvalidRequest(m)),
    };
    let mut resp = RpcResponse { status: StatusCode::OK, ..RpcResponse::default() };
    let n = items.len().max(1);
    let mut slots = Vec::with_capacity(n);
    let snapshot = app.pool.snapshot();
    app.cache.sync_reorgs(snapshot.reorgs);
    let finalized = snapshot.finalized;
    let mut to_send = Vec::with_capacity(n);
    let mut joiners = Vec::new();
    for item in single.into_iter().chain(items) {
        let Some(mut p) = admit(app, item, &mut slots) else { continue };
        p.rule = p.info.map_or(Rule::Never, |i| cache::policy(i, p.call.params.as_deref(), finalized, volatile));
        if let Some(hit) = lookup(app, &mut p).await {
            add_headers(&mut resp.headers, &hit.headers);
            fill(
                &mut slots[p.slot],
                Outcome::Result(Some(Arc::clone(&hit.result))),
                hit.backend.clone(),
                StatusCode::OK,
                true,
            );
            continue;
        }
        match p.key.as_ref().filter(|_| coalescable(&p)).map(|key| app.coalescer.join(key)) {
            Some(Role::Joiner(rx)) => joiners.push((p, rx)),
            Some(Role::Leader(guard)) => {
                p.leader = Some(guard);
                to_send.push(p);
            }
            None => to_send.push(p),
        }
    }
    if to_send.is_empty() && joiners.is_empty() {
        return finish(app, route, slots, batch, resp);
    }
    if joiners.is_empty() && (to_send.len() == 1 || to_send.iter().all(plain)) {
        // The common case (one call, or one group of plain reads): no join machinery.
        if let Some((members, result)) = run_group(app, ctx, Group { members: to_send }).await {
            record(&mut slots, &mut resp, &members, result);
        }
        return finish(app, route, slots, batch, resp);
    }
    let groups = group(to_send);
    let sent = futures::future::join_all(groups.into_iter().map(|g| run_group(app, ctx, g)));
    let waited = futures::future::join_all(joiners.into_iter().map(|(p, rx)| join_leader(app, ctx, p, rx)));
    let (sent, waited) = futures::join!(sent, waited);
    for (members, result) in sent.into_iter().flatten() {
        record(&mut slots, &mut resp, &members, result);
    }
    for (p, result) in waited {
        record(&mut slots, &mut resp, std::slice::from_ref(&p), result);
    }
    finish(app, route, slots, batch, resp)
}

/// Applies policy to one item: an immediate error slot, or a pending call.
fn admit(app: &AppState, item: Item, slots: &mut Vec<Slot>) -> Option<Pending> {
    let slot = slots.len();
    let blank = |id, method: String, info, result| Slot {
        id,
        method,
        info,
        result,
        backend: None,
        status: StatusCode::OK,
        from_cache: false,
    };
    let call = match item {
        Item::Invalid { id, reason } => {
            let id = Some(id.unwrap_or_else(|| null_id().to_owned()));
            slots.push(blank(id, String::new(), None, Some(Err(ProxyError::InvalidRequest(reason)))));
            return None;
        }
        Item::Call(c) => c,
    };
    if !app.config().policy.allows(&call.method) {
        let err = Err(ProxyError::MethodNotFound(call.method.clone()));
        let info = methods::lookup(&call.method);
        slots.push(blank(call.id, call.method, info, Some(err)));
        return None;
    }
    let call_id = call.id;
    let call = Outbound::new(call.method, call.params.map(Arc::from));
    let info = call.info();
    slots.push(blank(call_id, call.method.clone(), info, None));
    let params = call.params.as_deref();
    let needs = Needs {
        sticky: affinity::sticky_for(app, info, params),
        block: affinity::historic_block(info, params),
        exclude: Vec::new(),
    };
    let write = info.is_none_or(|m| !m.is_read());
    let key = info.map(|i| cache::key(&call.method, i, params));
    Some(Pending { slot, call, info, needs, write, rule: Rule::Never, key, leader: None })
}

/// Cache look-up for a cacheable call.
async fn lookup(app: &AppState, p: &mut Pending) -> Option<Arc<Entry>> {
    if p.rule == Rule::Never || p.needs.sticky.is_some() {
        return None;
    }
    app.cache.get(p.key.as_deref()?).await
}

/// Reads that are the same on every node can share one in-flight request.
fn coalescable(p: &Pending) -> bool {
    let shared = p.info.is_some_and(MethodInfo::is_shareable);
    shared && !p.write && p.needs.sticky.is_none() && p.key.is_some()
}

/// A read any node may answer, so it can share a group with other such reads.
fn plain(p: &Pending) -> bool {
    !p.write && p.needs.sticky.is_none() && p.needs.block.is_none()
}

/// Groups calls: plain reads together, everything else alone.
fn group(pending: Vec<Pending>) -> Vec<Group> {
    if pending.is_empty() {
        return Vec::new();
    }
    if pending.iter().all(plain) {
        // The usual case (one read, or a batch of plain reads): the calls are the group.
        return vec![Group { members: pending }];
    }
    let mut groups: Vec<Group> = Vec::with_capacity(pending.len());
    let mut reads = Group::default();
    for p in pending {
        if plain(&p) {
            reads.members.push(p);
        } else {
            groups.push(Group { members: vec![p] });
        }
    }
    if !reads.members.is_empty() {
        groups.insert(0, reads);
    }
    groups
}

type GroupResult = (Vec<Pending>, Result<Delivered, ProxyError>);

/// Dispatches one group, then publishes to joiners and fills the cache.
async fn run_group(app: &AppState, ctx: Ctx<'_>, g: Group) -> Option<GroupResult> {
    let first = g.members.first()?;
    let (needs, write) = (first.needs.clone(), first.write);
    // One call (the usual case) is sent from where it lies; a batch's calls are gathered.
    let gathered: Vec<Outbound>;
    let calls = match g.members.as_slice() {
        [one] => std::slice::from_ref(&one.call),
        many => {
            gathered = many.iter().map(|p| p.call.clone()).collect();
            &gathered
        }
    };
    let result = app.dispatcher().dispatch(ctx, calls, needs, write).await;
    let mut members = g.members;
    for (i, p) in members.iter_mut().enumerate() {
        // On failure the guard drops here, telling joiners to go themselves (they wait
        // concurrently with this group, so this must happen before we return).
        let guard = p.leader.take();
        let Ok(d) = &result else { continue };
        let outcome = &d.outcomes[i];
        affinity::observe(app, p.info, p.call.params.as_deref(), outcome, d.backend_index);
        store(app, p, outcome, d);
        if let Some(guard) = guard {
            guard.publish(|| Published::Done(d.one(i, members_alone_status(d, i))));
        }
    }
    Some((members, result))
}

/// The HTTP status call `i` of a group would get on its own: the node's own status when the
/// group was that one call, else 400 for a node's error answer (how a node answers a single
/// failing call) and 200 for a result.
fn members_alone_status(d: &Delivered, i: usize) -> StatusCode {
    match &d.outcomes[i] {
        _ if d.outcomes.len() == 1 => d.status,
        Outcome::Error { .. } => StatusCode::BAD_REQUEST,
        Outcome::Result(_) => StatusCode::OK,
    }
}

/// Caches an answer when its rule and result allow.
fn store(app: &AppState, p: &Pending, outcome: &Outcome, d: &Delivered) {
    let (Some(key), Some(text)) = (&p.key, outcome.result_text()) else { return };
    let Some(ttl) = cache::admits(p.rule, text, app.pool.snapshot().finalized) else { return };
    let Outcome::Result(Some(result)) = outcome else { return };
    let headers = Arc::clone(&d.headers);
    let volatile = p.info.is_some_and(|i| i.class == Class::Volatile);
    let entry = Entry { result: Arc::clone(result), headers, backend: d.backend.clone(), ttl, volatile };
    app.cache.put(key.to_string(), entry);
}

/// Waits for an identical in-flight request; goes alone if the leader gave up.
async fn join_leader(
    app: &AppState,
    ctx: Ctx<'_>,
    p: Pending,
    rx: tokio::sync::watch::Receiver<Option<Published>>,
) -> (Pending, Result<Delivered, ProxyError>) {
    match coalesce::wait(rx, ctx.deadline).await {
        Some(Published::Done(d)) => {
            app.metrics.coalesced.inc();
            (p, Ok(d))
        }
        Some(Published::GoYourself) => {
            let calls = [p.call.clone()];
            let r = app.dispatcher().dispatch(ctx, &calls, p.needs.clone(), false).await;
            (p, r)
        }
        None => (p, Err(ProxyError::Deadline(app.config().request_timeout.as_millis()))),
    }
}

fn fill(slot: &mut Slot, outcome: Outcome, backend: Arc<str>, status: StatusCode, from_cache: bool) {
    slot.result = Some(Ok(outcome));
    slot.backend = Some(backend);
    slot.status = status;
    slot.from_cache = from_cache;
}

/// Puts a group's (or joiner's) outcome into the slots and the response headers.
fn record(slots: &mut [Slot], resp: &mut RpcResponse, members: &[Pending], result: Result<Delivered, ProxyError>) {
    match result {
        Ok(d) => {
            resp.fallback |= d.fallback;
            resp.charges.push(d.charge);
            if !resp.backends.contains(&d.backend) {
                resp.backends.push(d.backend.clone());
            }
            for (p, o) in members.iter().zip(d.outcomes) {
                fill(&mut slots[p.slot], o, d.backend.clone(), d.status, false);
            }
            add_headers(&mut resp.headers, &d.headers);
        }
        Err(e) => {
            for p in members {
                slots[p.slot].result = Some(Err(e.clone()));
            }
        }
    }
}

/// Builds the response: ordered answers, status, metrics.
fn finish(app: &AppState, route: Route, mut slots: Vec<Slot>, batch: bool, mut resp: RpcResponse) -> RpcResponse {
    let mut out = Vec::with_capacity(slots.iter().map(Slot::answer_len_hint).sum::<usize>() + 2);
    let mut worst: Option<StatusCode> = None;
    let mut all_failed = true;
    out.extend_from_slice(if batch { b"[" } else { b"" });
    for (i, slot) in slots.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let outcome = match slot.result.as_ref().expect("every slot is answered") {
            Ok(o) => {
                all_failed = false;
                o.clone()
            }
            Err(e) => {
                all_failed &= e.is_server_side();
                worst = Some(worst.map_or(e.status(), |w| w.max(e.status())));
                e.to_outcome()
            }
        };
        count(app, route, slot, &outcome);
        jsonrpc::encode_answer(&mut out, slot.id.as_deref(), &outcome);
    }
    out.extend_from_slice(if batch { b"]" } else { b"" });
    let first = &slots[0];
    resp.status = http_status(batch, first, all_failed, worst);
    resp.cached = slots.iter().all(|s| s.from_cache);
    if resp.cached {
        for s in &slots {
            if let Some(b) = s.backend.as_ref().filter(|b| !resp.backends.contains(b)) {
                resp.backends.push(b.clone());
            }
        }
    }
    resp.error = slots.iter().find_map(|s| match &s.result {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    });
    resp.methods = match slots.len() {
        1 => std::mem::take(&mut slots[0].method),
        n => format!("{} +{} more", slots[0].method, n - 1),
    };
    resp.body = out;
    resp
}

/// The response's HTTP status: a single call answered by a node's error keeps the node's 4xx, a
/// single gateway error its own status; a batch is 200 unless every item failed on the
/// gateway's side, then the worst such status.
fn http_status(batch: bool, first: &Slot, all_failed: bool, worst: Option<StatusCode>) -> StatusCode {
    match (batch, &first.result) {
        (false, Some(Ok(Outcome::Error { .. }))) if first.status.is_client_error() => first.status,
        (false, Some(Err(e))) => e.status(),
        (true, _) if all_failed => worst.unwrap_or(StatusCode::OK),
        _ => StatusCode::OK,
    }
}

/// One value per header name (the first node's).
/// Adds a node's `x-aztec-*` headers to the answer's: a name already there keeps its first
/// value. The items of a batch mostly bring the same set (one node, or its cached answers):
/// then nothing is compared past one pass.
fn add_headers(to: &mut crate::forward::NodeHeaders, from: &crate::forward::NodeHeaders) {
    if to.is_empty() {
        *to = Arc::clone(from);
        return;
    }
    if Arc::ptr_eq(to, from) || **to == **from {
        return;
    }
    let mut merged = to.to_vec();
    for (k, v) in from.iter() {
        if !merged.iter().any(|(have, _)| have == k) {
            merged.push((k.clone(), v.clone()));
        }
    }
    *to = merged.into();
}

fn count(app: &AppState, route: Route, slot: &Slot, outcome: &Outcome) {
    let status = match (&slot.result, outcome) {
        (Some(Err(e)), _) => e.label(),
        (_, Outcome::Error { .. }) => "rpc_error",
        _ => "ok",
    };
    app.metrics.served.inc();
    if let Some(Err(e)) = &slot.result {
        app.metrics.failed.inc();
        app.metrics.rejected.get_or_create(&ReasonLabel { reason: e.label() }).inc();
    }
    let backend = slot.backend.as_deref().unwrap_or("none");
    app.metrics.count_request(route.as_str(), Metrics::method_label(slot.info), status, backend);
}

mod whole;
pub use whole::{reject, reject_parsed, weight};

#[cfg(test)]
mod tests;
