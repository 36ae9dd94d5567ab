//! One analysis for all replicas (README "Shared analysis"). Replicas that share a Redis elect
//! one analyser per node through a lease: `SET key token NX PX ttl`, renewed on each integrity
//! pass while the value is still this replica's token, with the time to live two integrity
//! intervals, so when the analyser stops another replica takes the lease within two intervals.
//! The holder fetches the node's validator stats, analyses them and publishes the analysis
//! (before cross-node consensus, which every replica applies itself); the write is fenced by the
//! lease value in the same script, so a replica that lost its lease (paused, partitioned)
//! cannot overwrite its successor's result. The others adopt the published analysis as if they
//! had made it. Redis down, or no result published yet: the replica analyses on its own, as
//! without Redis, and counts the fallback.
//!
//! State: [`Lease`] is owned by the monitor (its only caller); the set of leases held is a
//! small mutex-guarded set for the `analysis_leases_held` gauge. Probes stay per replica: they
//! are cheap, and each replica routes on its own view of the nodes.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Value;
use serde::{Deserialize, Serialize};

use crate::error::CheckError;
use crate::integrity::{Analysis, IntegrityParams};
use crate::metrics::{Metrics, ReasonLabel};
use crate::shared::{Shared, KEY_PREFIX};

/// Takes the lease (`SET NX PX`) or renews it when it is still ours; otherwise returns the
/// published result (nil when there is none). KEYS: lease, result. ARGV: token, ttl ms.
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return redis.call('GET', KEYS[2])
";

/// Writes the result only while the lease is ours (fencing by lease value). KEYS: lease,
/// result. ARGV: token, payload, ttl ms.
const PUBLISH: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
";

/// One node's integrity check, made here or adopted from the replica holding its lease.
#[derive(Debug)]
pub struct Checked {
    /// The analysis (before consensus), or why there is none.
    pub result: Result<Analysis, CheckError>,
    /// Unix seconds when the analysis was made (by whichever replica made it).
    pub at: u64,
}

impl Checked {
    /// A check made now by this replica.
    pub fn now(result: Result<Analysis, CheckError>) -> Checked {
        Checked { result, at: crate::clock::unix_secs() }
    }
}

/// What travels through Redis: the analysis (`A` is `&Analysis` when writing) or the
/// analyser's error text.
#[derive(Serialize, Deserialize)]
struct Published<A> {
    /// Unix seconds of the analysis.
    at: u64,
    /// The analysis, when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    analysis: Option<A>,
    /// The analyser's error message, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The Redis keys of one node's lease and published result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeKey {
    lease: String,
    result: String,
}

impl NodeKey {
    /// The keys for a node at `url` analysed with `params` and `watch`. Replicas agree on them
    /// when they have the same configuration for the node: the hash covers the URL without
    /// credentials (the same node under another display name is the same node; its password
    /// never reaches Redis) and every input of the analysis, so replicas configured
    /// differently never adopt each other's results. Both keys share a `{hash tag}`.
    pub fn new(url: &url::Url, params: &IntegrityParams, watch: &[String]) -> NodeKey {
        let mut u = url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        let p = params;
        let text = format!(
            "{u}|{}|{}|{}|{}|{}|{}",
            p.slots_per_epoch,
            p.expected_validators,
            p.check_epochs,
            p.score_threshold,
            p.archiver_threshold_epochs,
            watch.join(",")
        );
        let id = format!("{:016x}", fnv1a(text.as_bytes()));
        NodeKey {
            lease: format!("{KEY_PREFIX}analysis:{{{id}}}:lease"),
            result: format!("{KEY_PREFIX}analysis:{{{id}}}:result"),
        }
    }

    /// The lease key (its value is the holder's token).
    pub fn lease(&self) -> &str {
        &self.lease
    }

    /// The key of the published result.
    pub fn result(&self) -> &str {
        &self.result
    }
}

/// FNV-1a, 64 bits: a hash every replica computes alike, whatever its Rust version.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// What this replica does about one node on this pass.
enum Turn {
    /// It holds the lease: analyse and publish.
    Analyse,
    /// Another replica published this.
    Adopt(Box<Checked>),
    /// Analyse alone, without publishing; the reason is the fallback label.
    Alone(&'static str),
}

/// This replica's side of the per-node analyser election.
pub struct Lease {
    redis: Arc<Shared>,
    token: String,
    acquire: redis::Script,
    publish: redis::Script,
    held: Mutex<HashSet<String>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease(token: {})", self.token)
    }
}

impl Lease {
    /// An election client on `redis` with a fresh replica token (the pod's `HOSTNAME`, when
    /// set, plus random bits, so `GET` on a lease key tells operators who analyses).
    pub fn new(redis: Arc<Shared>, metrics: Arc<Metrics>) -> Lease {
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty() && h.len() <= 64);
        let random = format!("{:016x}", rand::random::<u64>());
        let token = host.map_or_else(|| random.clone(), |h| format!("{h}/{random}"));
        Lease {
            redis,
            token,
            acquire: redis::Script::new(ACQUIRE),
            publish: redis::Script::new(PUBLISH),
            held: Mutex::default(),
            metrics,
        }
    }

    /// This replica's token (the value of the leases it holds).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// One node's check on this pass: adopted from the replica holding the node's lease, or
    /// made by `analyse` here (and published when this replica holds the lease). `ttl` is the
    /// lease's time to live, two integrity intervals.
    pub async fn check<F>(&self, key: &NodeKey, ttl: Duration, analyse: F) -> Checked
    where
        F: Future<Output = Result<Analysis, CheckError>>,
    {
        match self.turn(key, ttl).await {
            Turn::Adopt(checked) => {
                self.metrics.analyses_adopted.inc();
                *checked
            }
            Turn::Analyse => {
                let checked = Checked::now(analyse.await);
                self.publish(key, &checked, ttl).await;
                checked
            }
            Turn::Alone(reason) => {
                self.metrics.analysis_fallback.get_or_create(&ReasonLabel { reason }).inc();
                Checked::now(analyse.await)
            }
        }
    }

    /// Takes or renews the lease, else reads the published result.
    async fn turn(&self, key: &NodeKey, ttl: Duration) -> Turn {
        let Some(mut conn) = self.redis.conn() else {
            self.set_held(key, false);
            return Turn::Alone("redis");
        };
        let reply: Result<Value, _> = self
            .acquire
            .key(&key.lease)
            .key(&key.result)
            .arg(&self.token)
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await;
        let turn = match reply {
            Ok(Value::Int(1)) => Turn::Analyse,
            Ok(Value::BulkString(bytes)) => {
                adopt(&bytes).map_or(Turn::Alone("unreadable"), |c| Turn::Adopt(Box::new(c)))
            }
            Ok(_) => Turn::Alone("unpublished"),
            Err(e) => {
                self.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "redis unavailable for the analysis lease; analysing alone");
                Turn::Alone("redis")
            }
        };
        self.set_held(key, matches!(turn, Turn::Analyse));
        turn
    }

    /// Publishes `checked` under `key` if the lease is still ours.
    async fn publish(&self, key: &NodeKey, checked: &Checked, ttl: Duration) {
        let published = Published {
            at: checked.at,
            analysis: checked.result.as_ref().ok(),
            error: checked.result.as_ref().err().map(ToString::to_string),
        };
        let Ok(payload) = serde_json::to_vec(&published) else { return };
        let Some(mut conn) = self.redis.conn() else { return };
        let reply: Result<i64, _> = self
            .publish
            .key(&key.lease)
            .key(&key.result)
            .arg(&self.token)
            .arg(payload)
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await;
        match reply {
            Ok(1) => {
                self.metrics.analyses_published.inc();
            }
            Ok(_) => {
                // Another replica took the lease while we analysed (we were too slow or paused).
                self.set_held(key, false);
                tracing::info!(lease = key.lease(), "analysis lease lost before publishing; result kept here only");
            }
            Err(e) => {
                self.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "publishing the analysis to redis failed");
            }
        }
    }

    /// Records whether this replica holds `key`'s lease (the `analysis_leases_held` gauge).
    fn set_held(&self, key: &NodeKey, held: bool) {
        let mut set = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if held {
            set.insert(key.lease.clone());
        } else {
            set.remove(&key.lease);
        }
        self.metrics.analysis_leases_held.set(i64::try_from(set.len()).unwrap_or(i64::MAX));
    }
}

/// A published payload as a check of this replica's; `None` when it does not parse (another
/// version's format: the replica analyses alone until the versions agree).
fn adopt(bytes: &[u8]) -> Option<Checked> {
    let p: Published<Analysis> = serde_json::from_slice(bytes).ok()?;
    let result = match (p.analysis, p.error) {
        (Some(a), _) => Ok(a),
        (None, Some(e)) => Err(CheckError::Peer(e)),
        (None, None) => return None,
    };
    Some(Checked { result, at: p.at })
}

/// A duration in whole milliseconds, at least 1 (`PX 0` is an error).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> IntegrityParams {
        IntegrityParams {
            slots_per_epoch: 32,
            expected_validators: 48,
            check_epochs: 10,
            score_threshold: 80,
            archiver_threshold_epochs: 100,
        }
    }

    #[test]
    fn replicas_agree_on_a_node_key_without_its_credentials() {
        let with = url::Url::parse("http://user:secret@10.0.0.5:8080/rpc").unwrap();
        let without = url::Url::parse("http://10.0.0.5:8080/rpc").unwrap();
        let a = NodeKey::new(&with, &params(), &[]);
        assert_eq!(a, NodeKey::new(&without, &params(), &[]));
        assert!(!a.lease.contains("secret") && !a.result.contains("secret"));
        assert!(a.lease.starts_with(KEY_PREFIX) && a.lease.ends_with(":lease"));
        assert_eq!(a.lease.replace(":lease", ""), a.result.replace(":result", ""), "one hash tag");
    }

    #[test]
    fn other_analysis_inputs_give_other_keys() {
        let u = url::Url::parse("http://10.0.0.5:8080").unwrap();
        let base = NodeKey::new(&u, &params(), &[]);
        let other_node = NodeKey::new(&url::Url::parse("http://10.0.0.6:8080").unwrap(), &params(), &[]);
        let other_window = NodeKey::new(&u, &IntegrityParams { check_epochs: 11, ..params() }, &[]);
        let watching = NodeKey::new(&u, &params(), &["0xab".to_owned()]);
        for other in [other_node, other_window, watching] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn a_published_error_is_adopted_as_the_peers_error() {
        let c = adopt(br#"{"at":5,"error":"fetching validator stats failed: timeout"}"#).unwrap();
        assert_eq!(c.at, 5);
        let e = c.result.unwrap_err().to_string();
        assert!(e.starts_with("fetching validator stats failed: timeout"), "{e}");
        assert!(adopt(b"{\"at\":5}").is_none());
        assert!(adopt(b"not json").is_none());
    }

    #[test]
    fn millis_is_never_zero() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
    }
}
