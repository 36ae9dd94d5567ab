//! Typed deserialisation of `getValidatorsStats` answers (docs/aztec-api.md#validator-stats).
//!
//! The structs borrow from the response body: status strings are `Cow<str>` that only allocate
//! when the JSON string holds escapes, validator addresses are skipped, and every field the
//! analysis does not need is ignored. Numbers that the node may send as decimal strings (slots,
//! window sizes) go through one lenient visitor. No `serde_json::Value` tree is ever built.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Unexpected, Visitor};
use serde::Deserialize;

use super::IntegrityError;

/// JSON-RPC response envelope; `id` and `jsonrpc` are ignored.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    result: Option<StatsDoc<'a>>,
    #[serde(borrow, default)]
    error: Option<RpcErrorObject<'a>>,
}

/// JSON-RPC error object.
#[derive(Deserialize)]
struct RpcErrorObject<'a> {
    #[serde(default)]
    code: i64,
    #[serde(borrow, default)]
    message: Cow<'a, str>,
}

/// A `ValidatorsStats` document. `slotWindow` is optional here although the schema requires it:
/// when absent no retention cap is assumed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StatsDoc<'a> {
    #[serde(borrow, default)]
    pub(super) stats: Validators<'a>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub(super) last_processed_slot: Option<u64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub(super) initial_slot: Option<u64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub(super) slot_window: Option<u64>,
}

/// The `stats` map's values, in document order, each with its address (the map key).
#[derive(Default)]
pub(super) struct Validators<'a>(pub(super) Vec<ValidatorDoc<'a>>);

/// One validator's stats; only the history (and, for the validator watch, the address) matters.
#[derive(Deserialize)]
pub(super) struct ValidatorDoc<'a> {
    /// The `stats` map key, borrowed from the body unless escaped.
    #[serde(skip)]
    pub(super) address: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) history: Vec<Record<'a>>,
}

/// A `stats` map key; `Cow` with `borrow` so that it borrows from the body.
#[derive(Deserialize)]
struct Address<'a>(#[serde(borrow)] Cow<'a, str>);

/// One history entry.
#[derive(Deserialize)]
pub(super) struct Record<'a> {
    #[serde(deserialize_with = "lenient_u64")]
    pub(super) slot: u64,
    #[serde(borrow)]
    pub(super) status: Cow<'a, str>,
}

/// Status families (docs/integrity.md#status-families).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    /// A block/checkpoint was produced; the rest of the committee was expected to attest.
    Attested,
    /// The proposer missed its slot.
    Missed,
    /// An attester's record (sent or missed).
    Attestation,
    /// Unknown status string: counted, never scored.
    Other,
}

/// Map a status string of any node version (docs/aztec-api.md#statuses) to its family.
pub(super) fn family(status: &str) -> Family {
    match status {
        "block-mined"
        | "block-proposed"
        | "checkpoint-mined"
        | "checkpoint-proposed"
        | "checkpoint-valid"
        | "checkpoint-unpublished"
        | "checkpoint-orphaned" => Family::Attested,
        "block-missed" | "checkpoint-missed" | "blocks-missed" | "checkpoint-invalid" | "checkpoint-unvalidated" => {
            Family::Missed
        }
        "attestation-sent" | "attestation-missed" => Family::Attestation,
        _ => Family::Other,
    }
}

/// Parse a full JSON-RPC response body.
pub(super) fn parse_response(body: &[u8]) -> Result<StatsDoc<'_>, IntegrityError> {
    let env: Envelope<'_> = serde_json::from_slice(body).map_err(|e| parse_error(&e))?;
    if let Some(err) = env.error {
        return Err(IntegrityError::RpcError { code: err.code, message: err.message.into_owned() });
    }
    env.result.ok_or(IntegrityError::NoResult)
}

/// Parse a bare `ValidatorsStats` document.
pub(super) fn parse_stats(body: &[u8]) -> Result<StatsDoc<'_>, IntegrityError> {
    serde_json::from_slice(body).map_err(|e| parse_error(&e))
}

fn parse_error(e: &serde_json::Error) -> IntegrityError {
    IntegrityError::Parse(e.to_string())
}

impl<'de: 'a, 'a> Deserialize<'de> for Validators<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ValidatorsVisitor(PhantomData))
    }
}

/// Collects the map's values into a `Vec`, each with its address key.
struct ValidatorsVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValidatorsVisitor<'a> {
    type Value = Validators<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of validator address to validator stats")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(Address(address)) = map.next_key::<Address<'de>>()? {
            let doc: ValidatorDoc<'de> = map.next_value()?;
            out.push(ValidatorDoc { address, ..doc });
        }
        Ok(Validators(out))
    }
}

/// Accepts a non-negative integer as a JSON number (integral floats included) or a decimal string.
struct LenientU64;

impl Visitor<'_> for LenientU64 {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer or a decimal string")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        // 2^64 is exactly representable; anything below it with no fraction fits a u64.
        if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 18_446_744_073_709_551_616.0 {
            Ok(v as u64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.trim().parse().map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

/// Like [`LenientU64`], with `null` meaning absent.
struct LenientOptU64;

impl<'de> Visitor<'de> for LenientOptU64 {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, a non-negative integer or a decimal string")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        lenient_u64(d).map(Some)
    }
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(LenientU64)
}

fn lenient_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_option(LenientOptU64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(json: &str) -> Result<Vec<u64>, IntegrityError> {
        let doc = parse_stats(json.as_bytes())?;
        Ok(doc.stats.0.iter().flat_map(|v| v.history.iter().map(|r| r.slot)).collect())
    }

    fn one_record(slot: &str) -> String {
        format!(
            r#"{{"stats":{{"0xa":{{"history":[{{"slot":{slot},"status":"attestation-sent"}}]}}}},"slotWindow":768}}"#
        )
    }

    #[test]
    fn slot_encodings() {
        let table: [(&str, Option<u64>); 8] = [
            ("12", Some(12)),
            (r#""12""#, Some(12)),
            (r#"" 12 ""#, Some(12)),
            ("12.0", Some(12)),
            ("12.5", None),
            ("-1", None),
            (r#""0x0c""#, None),
            ("true", None),
        ];
        for (raw, want) in table {
            let got = slots(&one_record(raw)).ok().map(|v| v[0]);
            assert_eq!(got, want, "slot {raw}");
        }
    }

    #[test]
    fn optional_header_fields() {
        let doc = parse_stats(br#"{"stats":{},"lastProcessedSlot":"40","initialSlot":null,"slotWindow":768}"#).unwrap();
        assert_eq!(doc.last_processed_slot, Some(40));
        assert_eq!(doc.initial_slot, None);
        assert_eq!(doc.slot_window, Some(768));
        let doc = parse_stats(br#"{"stats":{}}"#).unwrap();
        assert_eq!((doc.last_processed_slot, doc.slot_window), (None, None));
    }

    #[test]
    fn statuses_borrow_unless_escaped() {
        let json = r#"{"stats":{"0xa":{"history":[{"slot":1,"status":"checkpoint-mined"},
            {"slot":2,"status":"checkpoint\u002dmined"}]}},"slotWindow":768}"#;
        let doc = parse_stats(json.as_bytes()).unwrap();
        let h = &doc.stats.0[0].history;
        assert!(matches!(h[0].status, Cow::Borrowed(_)));
        assert!(matches!(h[1].status, Cow::Owned(_)));
        assert_eq!(family(&h[1].status), Family::Attested);
    }

    #[test]
    fn families_by_version() {
        let table = [
            ("block-mined", Family::Attested),
            ("block-proposed", Family::Attested),
            ("block-missed", Family::Missed),
            ("checkpoint-mined", Family::Attested),
            ("checkpoint-proposed", Family::Attested),
            ("checkpoint-missed", Family::Missed),
            ("blocks-missed", Family::Missed),
            ("checkpoint-valid", Family::Attested),
            ("checkpoint-invalid", Family::Missed),
            ("checkpoint-unvalidated", Family::Missed),
            ("checkpoint-unpublished", Family::Attested),
            ("checkpoint-orphaned", Family::Attested),
            ("attestation-sent", Family::Attestation),
            ("attestation-missed", Family::Attestation),
            ("checkpoint-something-new", Family::Other),
            ("", Family::Other),
        ];
        for (status, want) in table {
            assert_eq!(family(status), want, "{status}");
        }
    }

    #[test]
    fn envelopes() {
        let ok = br#"{"jsonrpc":"2.0","id":"x","result":{"stats":{},"slotWindow":0}}"#;
        assert_eq!(parse_response(ok).unwrap().slot_window, Some(0));
        let err = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found: aztec_getValidatorsStats"}}"#;
        match parse_response(err) {
            Err(IntegrityError::RpcError { code, message }) => {
                assert_eq!(code, -32601);
                assert!(message.contains("aztec_getValidatorsStats"));
            }
            other => panic!("expected RpcError, got {:?}", other.map(|d| d.slot_window)),
        }
        for body in [&br#"{"jsonrpc":"2.0","id":1}"#[..], br#"{"jsonrpc":"2.0","id":1,"result":null}"#] {
            assert!(matches!(parse_response(body), Err(IntegrityError::NoResult)));
        }
        for body in [&b"not json"[..], b"", b"[1,2]", br#"{"stats":{"0xa":{"history":[{"status":"x"}]}}}"#] {
            assert!(matches!(parse_stats(body), Err(IntegrityError::Parse(_))));
        }
    }
}
