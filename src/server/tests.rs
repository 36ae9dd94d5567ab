//! Unit tests of `server`.

use super::*;

#[test]
fn request_id_rules() {
    let long_ok = "a".repeat(128);
    let too_long = "a".repeat(129);
    let cases: &[(&str, bool)] = &[
        ("abc-123", true),
        ("req.1:2_3-4", true),
        ("ABCdef0189", true),
        (&long_ok, true),
        ("", false),
        (&too_long, false),
        ("has space", false),
        ("semi;colon", false),
        ("slash/", false),
        ("quote\"", false),
        ("ümlaut", false),
        ("new\nline", false),
    ];
    for (given, kept) in cases {
        assert_eq!(sane_request_id(given), *kept, "{given:?}");
        let id = request_id(Some(given.as_bytes()));
        if *kept {
            assert_eq!(&id, given);
        } else {
            assert_eq!(id.len(), 16, "{given:?} → {id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }
    assert_ne!(request_id(None), request_id(None), "generated ids differ");
}

#[test]
fn client_ip_rules() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    // (trusted proxies, peer, X-Forwarded-For, expected client)
    let cases: &[(&[IpNet], &str, Option<&str>, &str)] = &[
        (&trusted, "203.0.113.9", None, "203.0.113.9"),
        (&trusted, "203.0.113.9", Some("198.51.100.1"), "203.0.113.9"), // untrusted peer: header ignored
        (&trusted, "10.1.2.3", None, "10.1.2.3"),
        (&trusted, "10.1.2.3", Some("198.51.100.1"), "198.51.100.1"),
        (&trusted, "10.1.2.3", Some("198.51.100.1, 10.9.9.9"), "198.51.100.1"), // trusted hops skipped
        (&trusted, "10.1.2.3", Some("1.1.1.1, 198.51.100.1"), "198.51.100.1"),  // rightmost untrusted wins
        (&trusted, "10.1.2.3", Some("garbage, 198.51.100.1 "), "198.51.100.1"),
        (&trusted, "10.1.2.3", Some("garbage"), "10.1.2.3"),
        (&trusted, "10.1.2.3", Some("10.4.4.4, 10.5.5.5"), "10.1.2.3"), // all trusted: the peer
        (&trusted, "::1", Some("2001:db8::7"), "2001:db8::7"),
        (&[], "10.1.2.3", Some("198.51.100.1"), "10.1.2.3"), // nothing trusted
    ];
    for (trusted, peer, xff, want) in cases {
        assert_eq!(client_ip(trusted, ip(peer), xff.map(str::as_bytes)), ip(want), "peer {peer}, xff {xff:?}");
    }
}
