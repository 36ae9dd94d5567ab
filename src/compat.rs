//! API generations and capabilities: which node can answer which call, and under which name.
//!
//! Aztec nodes of v4 and older answer only `node_*` names; v5 and newer answer `aztec_*` with
//! `node_*` as an alias, and renamed or removed some methods (see `docs/aztec-api.md`). A call
//! is sent to a node only when that node serves it, either under the client's own name or
//! through a rename whose answer has the same shape:
//!
//! | client asks (any namespace)        | v4 and older node            | v5 and newer node                |
//! |------------------------------------|------------------------------|----------------------------------|
//! | `getL2Tips`                        | `node_getL2Tips`             | `getChainTips`                   |
//! | `getChainTips`                     | `node_getL2Tips` (v4 only)   | `getChainTips`                   |
//! | `getProvenBlockNumber`             | `node_getProvenBlockNumber`  | `getBlockNumber(["proven"])`     |
//! | `getCheckpointedBlockNumber`       | (v4) as asked                | `getBlockNumber(["checkpointed"])` |
//! | `getBlockNumber([tag])`            | `getProvenBlockNumber` / `getCheckpointedBlockNumber` / `getBlockNumber()`; `finalized` has no v4 form | as asked |
//!
//! v3's flat `getL2Tips` shape differs from the nested one, so `getChainTips` is never sent to
//! a v3 node. Everything else goes under its own name when the node's version serves it (the
//! method table's `since..=until` column), and never to a node that has answered `-32601` for
//! that name since its last restart or upgrade ([`Backend::lacks`]).
//!
//! The caller's generation is read from its namespace: `node_*` callers are v4 clients,
//! `aztec_*` callers v5 and newer. Methods whose answer shape differs between generations
//! (`by_generation` in the table: validator stats, tips, blocks, receipts) prefer a node of the
//! caller's generation.

use std::sync::Arc;

use serde_json::value::RawValue;

use crate::methods::{self, MethodInfo};
use crate::upstream::{Backend, Namespace};

/// One call of a group, ready to send.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Method as the client named it.
    pub method: String,
    /// Raw params.
    pub params: Option<Arc<RawValue>>,
    /// The method's table row, looked up once (routing asks for it per candidate node).
    info: Option<&'static MethodInfo>,
}

impl Outbound {
    /// A call of `method` with `params`.
    pub fn new(method: String, params: Option<Arc<RawValue>>) -> Outbound {
        let info = methods::lookup(&method);
        Outbound { method, params, info }
    }

    /// The table row of the client's method.
    pub fn info(&self) -> Option<&'static MethodInfo> {
        self.info
    }
}

/// The generation of API a client speaks, read from its namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// `node_*` callers: the v4 API (and older).
    Legacy,
    /// `aztec_*` callers: v5 and newer.
    Current,
}

impl Generation {
    /// The generation of a caller using `method`.
    pub fn of_client(method: &str) -> Option<Generation> {
        match methods::namespace(method)? {
            "node" => Some(Generation::Legacy),
            "aztec" => Some(Generation::Current),
            _ => None,
        }
    }

    /// Whether a node of API major version `major` speaks this generation's shapes.
    pub fn fits(self, major: u8) -> bool {
        match self {
            Generation::Legacy => major == 4,
            Generation::Current => major >= 5,
        }
    }
}

/// How one call is sent to one node: the method served there and its params.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The method the node answers.
    pub method: &'static MethodInfo,
    /// Replacement params (`None`: the client's own).
    pub params: Option<&'static str>,
}

fn info(name: &str) -> &'static MethodInfo {
    methods::by_bare_name(name).expect("renames name table methods")
}

/// The block tag of a `getBlockNumber([tag])` call, if any (`Some("")` for no tag).
fn block_number_tag(params: Option<&RawValue>) -> Option<String> {
    let text = params.map_or("[]", RawValue::get);
    let list: Vec<Option<String>> = serde_json::from_str(text).ok()?;
    match list.as_slice() {
        [] | [None] => Some(String::new()),
        [Some(tag)] => Some(tag.clone()),
        _ => None,
    }
}

/// How a node of API major version `major` can answer a call of `method` (the client's table
/// row), or `None` when it cannot. `major == 0` (not known yet) sends the call as asked.
pub fn target(method: &'static MethodInfo, params: Option<&RawValue>, major: u8) -> Option<Target> {
    let keep = |m: &'static MethodInfo| Some(Target { method: m, params: None });
    let replace = |name: &str, p: &'static str| Some(Target { method: info(name), params: Some(p) });
    if major == 0 {
        return keep(method);
    }
    match method.name {
        "getBlockNumber" if major <= 4 => match block_number_tag(params)?.as_str() {
            "" => keep(method),
            "proposed" | "latest" => replace("getBlockNumber", "[]"),
            "proven" => replace("getProvenBlockNumber", "[]"),
            "checkpointed" if major == 4 => replace("getCheckpointedBlockNumber", "[]"),
            _ => None,
        },
        _ if method.served_by(major) => keep(method),
        "getL2Tips" => keep(info("getChainTips")).filter(|_| major >= 5),
        "getChainTips" if major == 4 => keep(info("getL2Tips")),
        "getProvenBlockNumber" if major >= 5 => replace("getBlockNumber", "[\"proven\"]"),
        "getCheckpointedBlockNumber" if major >= 5 => replace("getBlockNumber", "[\"checkpointed\"]"),
        _ => None,
    }
}

/// Whether `backend` can answer `call` now: its version serves the call (directly or through a
/// rename) and it has not answered `-32601` for that name. Calls outside the table (allowed by
/// an operator's `ALLOW_METHODS` glob) go anywhere.
pub fn serves(backend: &Backend, call: &Outbound) -> bool {
    let Some(info) = call.info() else { return true };
    target(info, call.params.as_deref(), backend.api_major()).is_some_and(|t| !backend.lacks(t.method))
}

/// The full name to send for `call` to `backend`, with the params to send.
pub fn wire_call<'a>(backend: &Backend, call: &'a Outbound) -> (&'a str, Option<WireParams<'a>>) {
    let major = backend.api_major();
    let client_ns = methods::namespace(&call.method).unwrap_or("");
    let Some(t) = call.info().and_then(|i| target(i, call.params.as_deref(), major)) else {
        return (call.method.as_str(), call.params.as_deref().map(WireParams::Raw));
    };
    let ns = namespace_for(backend, client_ns);
    let params = match t.params {
        Some(p) => Some(WireParams::Text(p)),
        None => call.params.as_deref().map(WireParams::Raw),
    };
    (t.method.full_name(ns), params)
}

/// The namespace to use on `backend` for a caller that used `client_ns`: `node` where only
/// `node_*` works (v4 and older, or a node learned to answer only `node_*`, as some
/// third-party gateways do), else the caller's own.
pub fn namespace_for<'a>(backend: &Backend, client_ns: &'a str) -> &'a str {
    pick_namespace(backend.api_major(), backend.namespace() == Namespace::Node, client_ns)
}

fn pick_namespace(major: u8, node_only: bool, client_ns: &str) -> &str {
    if node_only || (1..=4).contains(&major) {
        "node"
    } else if client_ns == "node" || client_ns == "aztec" {
        client_ns
    } else {
        "aztec"
    }
}

/// Params as sent: the client's raw value or a fixed replacement.
#[derive(Clone, Copy, Debug)]
pub enum WireParams<'a> {
    /// The client's params.
    Raw(&'a RawValue),
    /// A replacement written by a rename.
    Text(&'static str),
}

impl<'a> WireParams<'a> {
    /// The JSON text.
    pub fn get(&self) -> &'a str {
        match self {
            WireParams::Raw(r) => r.get(),
            WireParams::Text(t) => t,
        }
    }
}

/// The table method a `-32601` answer to `call` on `backend` tells us the node lacks.
pub fn lacked_method(backend: &Backend, call: &Outbound) -> Option<&'static MethodInfo> {
    let info = call.info()?;
    target(info, call.params.as_deref(), backend.api_major()).map(|t| t.method)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(method: &str, params: &str, major: u8) -> Option<(&'static str, Option<&'static str>)> {
        let raw = RawValue::from_string(params.to_owned()).unwrap();
        let info = methods::lookup(method).unwrap();
        target(info, Some(&raw), major).map(|t| (t.method.name, t.params))
    }

    #[test]
    fn renames_both_ways() {
        assert_eq!(t("node_getL2Tips", "[]", 6), Some(("getChainTips", None)));
        assert_eq!(t("aztec_getChainTips", "[]", 4), Some(("getL2Tips", None)));
        assert_eq!(t("aztec_getChainTips", "[]", 3), None, "v3 tips are flat");
        assert_eq!(t("node_getProvenBlockNumber", "[]", 5), Some(("getBlockNumber", Some("[\"proven\"]"))));
        assert_eq!(t("node_getCheckpointedBlockNumber", "[]", 6), Some(("getBlockNumber", Some("[\"checkpointed\"]"))));
        assert_eq!(t("aztec_getBlockNumber", "[\"proven\"]", 4), Some(("getProvenBlockNumber", Some("[]"))));
        assert_eq!(
            t("aztec_getBlockNumber", "[\"checkpointed\"]", 4),
            Some(("getCheckpointedBlockNumber", Some("[]")))
        );
        assert_eq!(t("aztec_getBlockNumber", "[\"checkpointed\"]", 3), None);
        assert_eq!(t("aztec_getBlockNumber", "[\"finalized\"]", 4), None);
        assert_eq!(t("aztec_getBlockNumber", "[\"latest\"]", 4), Some(("getBlockNumber", Some("[]"))));
        assert_eq!(t("aztec_getBlockNumber", "[]", 4), Some(("getBlockNumber", None)));
        assert_eq!(t("aztec_getBlockNumber", "[\"finalized\"]", 5), Some(("getBlockNumber", None)));
    }

    #[test]
    fn version_ranges() {
        assert_eq!(t("aztec_getL1Constants", "[]", 4), None);
        assert_eq!(t("aztec_getL1Constants", "[]", 5), Some(("getL1Constants", None)));
        assert_eq!(t("node_getBlockHeader", "[]", 5), None);
        assert_eq!(t("aztec_getValidatorStatsBatch", "[[]]", 5), None);
        assert_eq!(t("aztec_getValidatorStatsBatch", "[[]]", 6), Some(("getValidatorStatsBatch", None)));
        assert_eq!(t("node_getCurrentBaseFees", "[]", 3), Some(("getCurrentBaseFees", None)));
        assert_eq!(t("node_getCurrentBaseFees", "[]", 4), None);
        assert_eq!(t("node_getL1Constants", "[]", 0), Some(("getL1Constants", None)), "unknown version: as asked");
    }

    #[test]
    fn namespaces_and_generations() {
        assert_eq!(pick_namespace(4, false, "aztec"), "node");
        assert_eq!(pick_namespace(5, false, "aztec"), "aztec");
        assert_eq!(pick_namespace(5, true, "aztec"), "node", "a node_-only gateway reporting v5");
        assert_eq!(pick_namespace(6, false, "node"), "node");
        assert_eq!(pick_namespace(0, false, "bot"), "aztec");
        assert_eq!(Generation::of_client("node_getBlock"), Some(Generation::Legacy));
        assert_eq!(Generation::of_client("aztec_getBlock"), Some(Generation::Current));
        assert!(Generation::Legacy.fits(4) && !Generation::Legacy.fits(3) && !Generation::Legacy.fits(5));
        assert!(Generation::Current.fits(6) && !Generation::Current.fits(4));
    }
}
