//! Request affinity: read-your-writes (receipts and tx look-ups of a tx sent through the
//! gateway go to the node that took it, until the receipt is mined) and history-aware routing
//! (world-state reads at an explicit old block go only to nodes that still hold that block).
//!
//! The tx hash is read from `params[0].txHash` of `sendTx` (the serialized `Tx` carries it).
//! A client that sends txs without it simply gets no stickiness.
//!
//! This module owns the pin table, [`Sticky`] (`moka`: bounded, entries expire after 30 min);
//! the gateway's state holds one, and only [`observe`] writes it. The functions take anything
//! that holds the table (`AsRef<Sticky>`, e.g. the gateway's `AppState`), so this module needs
//! nothing from the layers above it.

use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::jsonrpc::{self, Outcome};
use crate::methods::MethodInfo;

/// Read-your-writes pins: tx hash (lower case) → backend index, bounded and expiring.
#[derive(Debug)]
pub struct Sticky(moka::sync::Cache<String, usize>);

impl Sticky {
    /// At most 100 000 pins, each forgotten 30 minutes after it was made.
    pub fn new() -> Sticky {
        Sticky(moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(1800)).build())
    }

    /// Forgets every pin (a reload moved backends: pins name positions in the list).
    pub fn clear(&self) {
        self.0.invalidate_all();
    }
}

impl Default for Sticky {
    fn default() -> Sticky {
        Sticky::new()
    }
}

impl AsRef<Sticky> for Sticky {
    fn as_ref(&self) -> &Sticky {
        self
    }
}

#[derive(Deserialize)]
struct TxLike<'a> {
    #[serde(borrow, rename = "txHash")]
    tx_hash: Option<&'a str>,
}

#[derive(Deserialize)]
struct ReceiptLike<'a> {
    #[serde(borrow)]
    status: Option<&'a str>,
}

/// First param as a string (tx hash look-ups).
fn first_str(params: Option<&RawValue>) -> Option<String> {
    serde_json::from_str::<String>(jsonrpc::first_param(params)?.get()).ok()
}

/// The node a receipt / tx look-up must go to, if the tx was sent through us.
pub fn sticky_for(app: &impl AsRef<Sticky>, info: Option<&MethodInfo>, params: Option<&RawValue>) -> Option<usize> {
    if !info?.follows_send {
        return None;
    }
    app.as_ref().0.get(&first_str(params)?.to_ascii_lowercase())
}

/// An explicit block number as first param of a world-state method.
pub fn historic_block(info: Option<&MethodInfo>, params: Option<&RawValue>) -> Option<u64> {
    if !info?.world_state {
        return None;
    }
    jsonrpc::first_number(params)
}

/// Remembers which node took a tx; forgets once its receipt is mined.
pub fn observe(
    app: &impl AsRef<Sticky>,
    info: Option<&MethodInfo>,
    params: Option<&RawValue>,
    outcome: &Outcome,
    backend: usize,
) {
    let Some(info) = info else { return };
    match (info.name, outcome) {
        ("sendTx", Outcome::Result(_)) => {
            let hash = params.and_then(|p| {
                let v: Vec<TxLike<'_>> = serde_json::from_str(p.get()).ok()?;
                v.first()?.tx_hash.map(str::to_ascii_lowercase)
            });
            if let Some(h) = hash {
                app.as_ref().0.insert(h, backend);
            }
        }
        ("getTxReceipt", Outcome::Result(Some(r))) => {
            let status =
                serde_json::from_str::<ReceiptLike<'_>>(r.get()).ok().and_then(|x| x.status.map(str::to_owned));
            if status.is_some_and(|s| s != "pending" && s != "dropped") {
                if let Some(h) = first_str(params) {
                    app.as_ref().0.invalidate(&h.to_ascii_lowercase());
                }
            }
        }
        _ => {}
    }
}
