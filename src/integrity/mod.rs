//! Sentinel history integrity analysis (docs/integrity.md): pure functions, no I/O, no shared state.
//!
//! The monitor fetches a node's `getValidatorsStats` answer and hands the raw body to
//! [`analyse_response`]; the result is an [`Analysis`] owned by the caller. Nothing here keeps
//! state between calls, so there is no lock and nothing to share: the monitor publishes the
//! [`Verdict`] into its snapshot and may run [`apply_consensus`] over all nodes' analyses of a
//! round before doing so.
//!
//! Pipeline:
//! 1. `parse`: typed serde over the body, borrowing strings from it (no `Value` tree);
//! 2. `tally`: choose the window of complete epochs and count records per epoch by family;
//! 3. `score`: the epoch rules of docs/integrity.md#epoch-score (exact integer arithmetic), then the node score;
//! 4. `consensus`: cross-node majority on each slot's proposer outcome;
//! 5. `duties` (only with a watch list): the watched validators' records over the same window,
//!    judged across nodes by `crate::validators`.

mod consensus;
mod duties;
mod parse;
mod score;
mod tally;
#[cfg(test)]
mod testdoc;
#[cfg(test)]
mod tests;
mod verdict;

pub use consensus::apply_consensus;
pub use duties::{Duty, WatchedDuties};
pub use verdict::{Analysis, EpochReport, IntegrityStatus, NodeKind, SlotOutcomes, Verdict};

/// Largest accepted `slots_per_epoch` / `expected_validators`; keeps the exact arithmetic far
/// from overflow and rejects obviously broken configuration.
const MAX_DIMENSION: u64 = 1_000_000;
/// Largest accepted `check_epochs`: one report is built per window epoch.
const MAX_CHECK_EPOCHS: u64 = 100_000;

/// Network and policy parameters of one analysis (docs/integrity.md#parameters).
#[derive(Clone, Debug)]
pub struct IntegrityParams {
    /// Slots per epoch, S (`SLOTS_PER_EPOCH`, 32 on today's networks); must be 1..=1,000,000.
    pub slots_per_epoch: u64,
    /// Committee size per epoch, E (`EXPECTED_VALIDATORS`); must be 1..=1,000,000.
    pub expected_validators: u64,
    /// Number of complete epochs analysed (`INTEGRITY_CHECK_EPOCHS`); at most 100,000.
    pub check_epochs: u64,
    /// Score below which a node is `bad` (`INTEGRITY_SCORE_THRESHOLD`).
    pub score_threshold: u8,
    /// History depth (epochs) beyond which a node is an archiver (`ARCHIVER_THRESHOLD_EPOCHS`).
    pub archiver_threshold_epochs: u64,
}

/// Why a stats answer could not be analysed. Each is an integrity failure recorded with its
/// message, never a crash.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    /// The body is not valid JSON or not a `ValidatorsStats` document.
    #[error("unparsable stats response: {0}")]
    Parse(String),
    /// The node answered with a JSON-RPC error object.
    #[error("node answered JSON-RPC error {code}: {message}")]
    RpcError {
        /// JSON-RPC error code.
        code: i64,
        /// Error message as sent by the node.
        message: String,
    },
    /// The answer has neither `result` nor `error` (or `result` is `null`).
    #[error("stats response has no result")]
    NoResult,
    /// The analysis parameters are unusable.
    #[error("invalid integrity parameters: {0}")]
    InvalidParams(&'static str),
}

/// Analyse a whole JSON-RPC response body `{"jsonrpc":"2.0","id":..,"result":{ValidatorsStats}}`.
///
/// # Errors
/// [`IntegrityError::RpcError`] for an error object, [`IntegrityError::NoResult`] for a missing
/// or `null` result, [`IntegrityError::Parse`] for anything unparsable and
/// [`IntegrityError::InvalidParams`] for unusable parameters. A disabled sentinel or an empty
/// history is `Ok` with status [`IntegrityStatus::Unknown`] and a reason.
pub fn analyse_response(body: &[u8], params: &IntegrityParams) -> Result<Analysis, IntegrityError> {
    analyse_response_watching(body, params, &[])
}

/// [`analyse_response`], and also the records of the `watch`ed validators (lowercase
/// addresses) over the same window, in [`Analysis::duties`], read from the same parsed
/// document.
///
/// # Errors
/// As [`analyse_response`].
pub fn analyse_response_watching(
    body: &[u8],
    params: &IntegrityParams,
    watch: &[String],
) -> Result<Analysis, IntegrityError> {
    validate(params)?;
    let doc = parse::parse_response(body)?;
    Ok(analyse_watching(&doc, params, watch))
}

/// Analyse a bare `ValidatorsStats` document (the `result` of the RPC call).
///
/// # Errors
/// As [`analyse_response`], minus the envelope cases.
pub fn analyse_stats(stats_json: &[u8], params: &IntegrityParams) -> Result<Analysis, IntegrityError> {
    analyse_stats_watching(stats_json, params, &[])
}

/// [`analyse_stats`] plus the watched validators' records, as [`analyse_response_watching`].
///
/// # Errors
/// As [`analyse_stats`].
pub fn analyse_stats_watching(
    stats_json: &[u8],
    params: &IntegrityParams,
    watch: &[String],
) -> Result<Analysis, IntegrityError> {
    validate(params)?;
    let doc = parse::parse_stats(stats_json)?;
    Ok(analyse_watching(&doc, params, watch))
}

fn analyse_watching(doc: &parse::StatsDoc<'_>, params: &IntegrityParams, watch: &[String]) -> Analysis {
    let mut analysis = tally::analyse_doc(doc, params);
    if !watch.is_empty() {
        analysis.duties = duties::extract(doc, &analysis, watch, params.slots_per_epoch);
    }
    analysis
}

/// Status for a node score: `perfect` at 100, `good` at or above `threshold`, else `bad`.
pub fn status_for(score: u8, threshold: u8) -> IntegrityStatus {
    if score >= 100 {
        IntegrityStatus::Perfect
    } else if score >= threshold {
        IntegrityStatus::Good
    } else {
        IntegrityStatus::Bad
    }
}

/// Reject parameters that would divide by zero or allocate without bound.
fn validate(p: &IntegrityParams) -> Result<(), IntegrityError> {
    if !(1..=MAX_DIMENSION).contains(&p.slots_per_epoch) {
        return Err(IntegrityError::InvalidParams("slots_per_epoch must be 1..=1000000"));
    }
    if !(1..=MAX_DIMENSION).contains(&p.expected_validators) {
        return Err(IntegrityError::InvalidParams("expected_validators must be 1..=1000000"));
    }
    if p.check_epochs > MAX_CHECK_EPOCHS {
        return Err(IntegrityError::InvalidParams("check_epochs must be at most 100000"));
    }
    Ok(())
}
