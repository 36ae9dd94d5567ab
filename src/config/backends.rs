//! `SENTINEL_BACKENDS` entries and showing URLs safely: node URLs may carry credentials or API
//! keys (userinfo, query string), so every URL a person can see goes through [`redact_url`] or
//! [`redact_str`]; the Redis URL (often with a password) is a [`SecretUrl`], redacted even in
//! `Debug` output.

use url::Url;

/// One upstream node as configured (`Debug` shows the URL redacted).
#[derive(Clone)]
pub struct BackendConfig {
    /// Display name (`name=url`), else `host:port` of the URL.
    pub name: String,
    /// Full URL, possibly with credentials; never shown without [`redact_url`].
    pub url: Url,
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConfig").field("name", &self.name).field("url", &redact_url(&self.url)).finish()
    }
}

pub(super) fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Whether a URL's host is a plain DNS name or IP address. The URL parser also takes hosts like
/// `s=1` (from `http:/s=1`), whose derived backend name would not read back as `name=url`
/// (found by the `config` fuzz target).
fn plain_host(host: &str) -> bool {
    host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b))
}

/// Parses `SENTINEL_BACKENDS`: comma-separated `url` or `name=url` entries.
pub(super) fn parse_backends(v: &str, problems: &mut Vec<String>) -> Vec<BackendConfig> {
    let mut out: Vec<BackendConfig> = Vec::new();
    for entry in split_list(v) {
        let (name, raw) = match entry.split_once('=') {
            Some((n, u)) if !n.contains("://") && !n.contains('/') => (Some(n.trim()), u.trim()),
            _ => (None, entry.as_str()),
        };
        let url = match Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(plain_host) => u,
            _ => {
                problems.push(format!(
                    "SENTINEL_BACKENDS entry {:?}: expected http(s)://host[:port][/path], optionally prefixed with name=",
                    redact_str(raw)
                ));
                continue;
            }
        };
        let name = name.map_or_else(|| default_name(&url), str::to_owned);
        if out.iter().any(|b| b.name == name) {
            problems.push(format!("SENTINEL_BACKENDS: duplicate backend name {name:?}"));
            continue;
        }
        out.push(BackendConfig { name, url });
    }
    out
}

fn default_name(url: &Url) -> String {
    let host = url.host_str().unwrap_or("backend");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// A URL that carries a secret (the Redis password): `Debug` and `Display` show it redacted
/// ([`redact_url`]); only [`SecretUrl::expose`] gives it whole, to connect with.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Url);

impl SecretUrl {
    /// A Redis URL: `redis://`, `rediss://` (TLS) or `redis+unix://`, with an optional
    /// `user:password@` and database, as the Redis client will read it.
    ///
    /// # Errors
    /// Why the text is not such a URL (never containing the text itself).
    pub fn redis(raw: &str) -> Result<SecretUrl, String> {
        let expected = "expected redis[s]://[user:password@]host:port[/db]";
        let url = Url::parse(raw).map_err(|e| format!("{e}; {expected}"))?;
        if !matches!(url.scheme(), "redis" | "rediss" | "redis+unix") {
            return Err(format!("scheme {:?} is not redis, rediss or redis+unix; {expected}", url.scheme()));
        }
        redis::IntoConnectionInfo::into_connection_info(url.as_str()).map_err(|e| format!("{e}; {expected}"))?;
        Ok(SecretUrl(url))
    }

    /// The whole URL, credentials included: only for connecting, never for showing.
    pub fn expose(&self) -> &Url {
        &self.0
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretUrl({self})")
    }
}

/// `REDIS_CA_FILE`: a readable file holding at least one PEM certificate.
pub(super) fn ca_file(path: &str) -> Result<std::path::PathBuf, String> {
    match std::fs::read_to_string(path) {
        Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => Ok(path.into()),
        Ok(_) => Err(format!("{path:?} holds no PEM certificate")),
        Err(e) => Err(format!("{path:?}: {e}")),
    }
}

/// A URL safe to show: no userinfo, no query string (API keys live there), no fragment.
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let had_secret = !u.username().is_empty() || u.password().is_some() || u.query().is_some();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    let mut s = u.to_string();
    if had_secret {
        s.push_str(" (credentials redacted)");
    }
    s
}

/// Redacts a URL given as text, even when it does not parse (or parses without an authority):
/// then it is shown as given, except that everything from after `scheme://` up to the last `@`
/// (userinfo) is masked and the query string and fragment are dropped. A mistyped URL stays
/// recognisable; its secrets are not shown.
pub fn redact_str(raw: &str) -> String {
    // `user:pw@host` parses too, as scheme `user` and path `pw@host`: only a URL with an
    // authority is redacted field by field.
    if let Ok(u) = Url::parse(raw).map_err(drop).and_then(|u| if u.cannot_be_a_base() { Err(()) } else { Ok(u) }) {
        return redact_url(&u);
    }
    let (rest, had_query) = match raw.find(['?', '#']) {
        Some(i) => (&raw[..i], true),
        None => (raw, false),
    };
    let start = rest.find("://").map_or(0, |i| i + 3);
    let at = rest[start..].rfind('@').map(|i| start + i);
    let mut s = match at {
        Some(at) => format!("{}<redacted>{}", &rest[..start], &rest[at..]),
        None => rest.to_owned(),
    };
    if had_query || at.is_some() {
        s.push_str(" (credentials redacted)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_userinfo_and_query() {
        let u = Url::parse("https://user:secret@rpc.example/path?apikey=abc").unwrap();
        let r = redact_url(&u);
        assert!(!r.contains("secret") && !r.contains("abc") && !r.contains("user"), "{r}");
        let debug = format!("{:?}", BackendConfig { name: "n".into(), url: u });
        assert!(!debug.contains("secret") && !debug.contains("abc") && debug.contains("rpc.example"), "{debug}");
    }

    #[test]
    fn unparsable_urls_are_shown_without_secrets() {
        // (given, shown)
        let cases = [
            ("http//node-1:8080", "http//node-1:8080"),
            ("node-1:8080", "node-1:8080"),
            ("http://node-1:99999/", "http://node-1:99999/"),
            ("http://user:pw@node-1:99999/x", "http://<redacted>@node-1:99999/x (credentials redacted)"),
            ("http://node-1:99999/x?apikey=abc", "http://node-1:99999/x (credentials redacted)"),
            ("http:/user:pw@node-1:99999", "<redacted>@node-1:99999 (credentials redacted)"),
            ("user:pw@", "<redacted>@ (credentials redacted)"),
            ("user:pw@node-1:8080", "<redacted>@node-1:8080 (credentials redacted)"),
            ("ftp://u:pw@nope?k=1", "ftp://nope/ (credentials redacted)"),
        ];
        for (given, shown) in cases {
            let r = redact_str(given);
            assert_eq!(r, shown, "{given}");
            assert!(!r.contains("pw") && !r.contains("abc") && !r.contains("k=1"), "{r}");
        }
    }
}
