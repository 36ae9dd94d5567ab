//! Gateway-made errors and the one mapping to (HTTP status, JSON-RPC code, public message).
//!
//! Decisions (docs/aztec-api.md#errors): client faults are HTTP 400 with a JSON-RPC error, as the
//! node does; an oversized body is 413; rate limiting and overload are **HTTP 429 with
//! `Retry-After`** and code -32005 (the official client does not retry 4xx, so a limited client
//! backs off instead of hammering); no routable node is 503 (-32001), a node failure after all
//! retries is 502 (-32002) and the whole-request deadline is 504 (-32003) — 5xx because the
//! official client retries those. Internal details never reach the client; backend *names*
//! (never URLs) do, because they help the operator.

use http::StatusCode;

/// An error the gateway answers itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// Malformed JSON.
    #[error("Parse error: {0}")]
    Parse(String),
    /// Not a valid request (empty batch, not an object, missing method, batch too large).
    #[error("Invalid Request: {0}")]
    InvalidRequest(String),
    /// Unknown or forbidden method.
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    /// Body over `MAX_BODY_BYTES`.
    #[error("request body exceeds the limit of {0} bytes (MAX_BODY_BYTES)")]
    BodyTooLarge(usize),
    /// Per-client rate limit or gateway overload; retry after the given seconds.
    #[error("{reason}; retry after {retry_after_s} s")]
    TooManyRequests {
        /// Why (rate limit or overload).
        reason: String,
        /// Seconds for `Retry-After`.
        retry_after_s: u64,
    },
    /// More than `MAX_CONCURRENT_REQUESTS` in progress; retry after a second.
    #[error("gateway overloaded (MAX_CONCURRENT_REQUESTS); retry after 1 s")]
    Overloaded,
    /// No backend can serve this route now.
    #[error("no routable backend for {route}: {why}")]
    NoRoute {
        /// Route label.
        route: &'static str,
        /// Each backend's reason, for the operator.
        why: String,
    },
    /// Every attempt failed.
    #[error("upstream failure: backend {backend}: {source}")]
    Upstream {
        /// Name of the last backend tried.
        backend: String,
        /// How its attempt failed (never a URL).
        source: ForwardError,
    },
    /// The whole-request deadline passed.
    #[error("request deadline of {0} ms exceeded")]
    Deadline(u128),
}

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// The request never reached the node (connect refused, DNS, TLS): safe to retry writes.
    #[error("connect failed: {0}")]
    Connect(String),
    /// No answer within the attempt timeout.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The connection failed after the request was sent.
    #[error("connection error: {0}")]
    Io(String),
    /// HTTP 5xx (or a non-JSON-RPC 4xx such as a standby node's 404).
    #[error("HTTP {0}")]
    Status(u16),
    /// The answer is larger than allowed.
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    /// No room for the answer: node answers held in memory reached `MAX_BUFFERED_BYTES`.
    #[error("node answers held in memory reached MAX_BUFFERED_BYTES ({0} bytes)")]
    Budget(usize),
    /// 2xx/4xx but the body is not JSON-RPC.
    #[error("answer is not JSON-RPC")]
    NotJsonRpc,
}

impl ForwardError {
    /// Whether the node is to blame. An answer over `MAX_RESPONSE_BYTES` is what the client
    /// asked for (every node would send it), and a full `MAX_BUFFERED_BYTES` budget is the
    /// gateway's own pressure: neither is retried elsewhere or held against the node (else a
    /// client asking for huge answers could open every node's circuit).
    pub fn is_node_fault(&self) -> bool {
        !matches!(self, ForwardError::TooLarge(_) | ForwardError::Budget(_))
    }

    /// Whether the request may have reached the node (writes are not retried then).
    pub fn reached_node(&self) -> bool {
        !matches!(self, ForwardError::Connect(_))
    }

    /// Short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ForwardError::Connect(_) => "connect",
            ForwardError::Timeout(_) => "timeout",
            ForwardError::Io(_) => "io",
            ForwardError::Status(_) => "http_status",
            ForwardError::NotJsonRpc => "not_jsonrpc",
            ForwardError::TooLarge(_) => "too_large",
            ForwardError::Budget(_) => "answer_budget",
        }
    }
}

/// Why a probe failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The batch did not get a JSON-RPC answer.
    #[error(transparent)]
    Forward(#[from] ForwardError),
    /// `isReady` is unknown under both `aztec_*` and `node_*`.
    #[error("isReady not found in either namespace")]
    NoIsReady,
    /// None of `getChainTips`, `getL2Tips`, `getBlockNumber` answers.
    #[error("no tips method answers")]
    NoTipsMethod,
    /// Still learning after every retry.
    #[error("probe did not settle on a namespace and tips method")]
    Unsettled,
}

/// Why a node's integrity check failed (the last good verdict stays shown beside it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The validator stats could not be fetched.
    #[error("fetching validator stats failed: {0}")]
    Fetch(#[source] ForwardError),
    /// The document could not be analysed.
    #[error("analysis failed: {0}")]
    Analysis(#[source] crate::integrity::IntegrityError),
    /// The analysis task panicked or was cancelled.
    #[error("analysis task failed: {0}")]
    Task(String),
    /// The replica that analyses this node for the fleet failed so (`crate::lease`); the text
    /// is its own error message.
    #[error("{0} (reported by the analysing replica)")]
    Peer(String),
}

impl serde::Serialize for CheckError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl ProxyError {
    /// HTTP status for this error when it answers a whole request.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Parse(_) | ProxyError::InvalidRequest(_) | ProxyError::MethodNotFound(_) => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::TooManyRequests { .. } | ProxyError::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::NoRoute { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::Deadline(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            ProxyError::Parse(_) => -32700,
            ProxyError::InvalidRequest(_) | ProxyError::BodyTooLarge(_) => -32600,
            ProxyError::MethodNotFound(_) => -32601,
            ProxyError::TooManyRequests { .. } | ProxyError::Overloaded => -32005,
            ProxyError::NoRoute { .. } => -32001,
            ProxyError::Upstream { .. } => -32002,
            ProxyError::Deadline(_) => -32003,
        }
    }

    /// Whether this is the gateway's or a node's fault (5xx), not the client's.
    pub fn is_server_side(&self) -> bool {
        self.status().is_server_error()
    }

    /// Short label for metrics (`rejected` reasons and outcomes).
    pub fn label(&self) -> &'static str {
        match self {
            ProxyError::Parse(_) => "parse_error",
            ProxyError::InvalidRequest(_) => "invalid_request",
            ProxyError::MethodNotFound(_) => "method_not_found",
            ProxyError::BodyTooLarge(_) => "body_too_large",
            ProxyError::TooManyRequests { .. } => "rate_limited",
            ProxyError::Overloaded => "overloaded",
            ProxyError::NoRoute { .. } => "no_route",
            ProxyError::Upstream { .. } => "upstream_failure",
            ProxyError::Deadline(_) => "deadline",
        }
    }

    /// The JSON-RPC error object `{"code":..,"message":..}`.
    pub fn to_outcome(&self) -> crate::jsonrpc::Outcome {
        crate::jsonrpc::Outcome::error(self.code(), &self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_follows_the_node_conventions() {
        assert_eq!(ProxyError::Parse("x".into()).status(), StatusCode::BAD_REQUEST);
        assert_eq!(ProxyError::Parse("x".into()).code(), -32700);
        assert_eq!(ProxyError::MethodNotFound("a".into()).code(), -32601);
        assert_eq!(ProxyError::BodyTooLarge(1).status(), StatusCode::PAYLOAD_TOO_LARGE);
        let nr = ProxyError::NoRoute { route: "/", why: "all lagging".into() };
        assert_eq!(nr.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(nr.is_server_side());
        assert!(!ProxyError::InvalidRequest("x".into()).is_server_side());
    }
}
