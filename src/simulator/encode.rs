//! Deterministic pseudo-random values and allocation-free JSON writers.
//!
//! Everything the simulator invents (hashes, addresses, committees, mined-ness) is a pure
//! function of a seed and small integers, so every node with the same chain identity invents
//! the same values. Answers are written straight into a `Vec<u8>` with these helpers instead
//! of building `serde_json::Value` trees: it is the cheapest way to produce megabytes of
//! validator history or millions of `getBlockNumber` answers.

/// SplitMix64 finalizer: a fast, well-mixed bijection on `u64`.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Mixes two values into one pseudo-random `u64`.
pub(crate) fn hash2(a: u64, b: u64) -> u64 {
    mix(a ^ mix(b ^ 0x5851_f42d_4c95_7f2d))
}

/// Mixes three values into one pseudo-random `u64`.
pub(crate) fn hash3(a: u64, b: u64, c: u64) -> u64 {
    hash2(hash2(a, b), c)
}

/// FNV-1a over bytes, for seeds derived from text.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `n` in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `n` in decimal, with a sign when negative.
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// Appends `n` as a quoted decimal string (how Aztec encodes bigints).
pub(crate) fn write_u64_str(out: &mut Vec<u8>, n: u64) {
    out.push(b'"');
    write_u64(out, n);
    out.push(b'"');
}

/// Appends the low `digits` hex digits of `v`, most significant first.
pub(crate) fn write_hex_digits(out: &mut Vec<u8>, v: u64, digits: u32) {
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

/// Mask of the most significant 64-bit lane of an invented field element: it keeps the value
/// below 2^253, hence below the BN254 scalar field modulus (`0x30644e72…`, about 2^253.6), as a
/// real hash is. Clients parse these with `Fr.fromString`, which rejects anything at or above
/// the modulus.
const FIELD_TOP_LANE_MASK: u64 = (1 << 61) - 1;

/// Appends a quoted field element: `"0x"` + 64 lowercase hex digits, always below the BN254
/// field modulus. The last 16 digits are `n ^ mix(tag)`, so `decode_field` can recover `n`
/// without a lookup table.
pub(crate) fn write_field(out: &mut Vec<u8>, tag: u64, n: u64) {
    out.extend_from_slice(b"\"0x");
    write_hex_digits(out, hash3(tag, n, 0) & FIELD_TOP_LANE_MASK, 16);
    for lane in 1..3 {
        write_hex_digits(out, hash3(tag, n, lane), 16);
    }
    write_hex_digits(out, n ^ mix(tag), 16);
    out.push(b'"');
}

/// Appends a quoted field element holding the small number `n` (zero-padded hex).
pub(crate) fn write_small_field(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"\"0x");
    out.extend_from_slice(&[b'0'; 48]);
    write_hex_digits(out, n, 16);
    out.push(b'"');
}

/// Recovers `n` from a field written by `write_field(tag, n)`; `None` for any other string.
pub(crate) fn decode_field(tag: u64, text: &str) -> Option<u64> {
    let hex = text.strip_prefix("0x").unwrap_or(text);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let n = u64::from_str_radix(&hex[48..], 16).ok()? ^ mix(tag);
    let mut expect = Vec::with_capacity(70);
    write_field(&mut expect, tag, n);
    let same = expect[3..67].eq_ignore_ascii_case(hex.as_bytes());
    same.then_some(n)
}

/// Appends a quoted Ethereum address (`"0x"` + 40 lowercase hex digits) derived from `(tag, n)`.
pub(crate) fn write_address(out: &mut Vec<u8>, tag: u64, n: u64) {
    out.push(b'"');
    write_address_raw(out, tag, n);
    out.push(b'"');
}

/// Appends an unquoted Ethereum address derived from `(tag, n)`.
pub(crate) fn write_address_raw(out: &mut Vec<u8>, tag: u64, n: u64) {
    out.extend_from_slice(b"0x");
    write_hex_digits(out, hash3(tag, n, 0), 16);
    write_hex_digits(out, hash3(tag, n, 1), 16);
    write_hex_digits(out, hash3(tag, n, 2), 8);
}

/// Appends a JSON string literal with the necessary escapes.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(b"\\u00");
                write_hex_digits(out, u64::from(c as u32), 2);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Appends a float the way JavaScript's `JSON.stringify` does for ordinary values.
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    use std::io::Write as _;
    if v.is_finite() {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{v}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends a quoted ISO-8601 UTC date with milliseconds, e.g. `"2026-10-09T09:14:00.000Z"`.
pub(crate) fn write_iso_date(out: &mut Vec<u8>, unix_ms: u64) {
    let secs = unix_ms / 1000;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    out.push(b'"');
    write_padded(out, y, 4);
    out.push(b'-');
    write_padded(out, m, 2);
    out.push(b'-');
    write_padded(out, d, 2);
    out.push(b'T');
    write_padded(out, rem / 3600, 2);
    out.push(b':');
    write_padded(out, rem / 60 % 60, 2);
    out.push(b':');
    write_padded(out, rem % 60, 2);
    out.push(b'.');
    write_padded(out, unix_ms % 1000, 3);
    out.extend_from_slice(b"Z\"");
}

fn write_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = Vec::with_capacity(width);
    write_u64(&mut digits, n);
    for _ in digits.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(&digits);
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_dates() {
        let mut out = Vec::new();
        write_u64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        out.push(b' ');
        write_i64(&mut out, -32601);
        out.push(b' ');
        write_iso_date(&mut out, 1_760_001_240_123);
        assert_eq!(String::from_utf8(out).unwrap(), "0 18446744073709551615 -32601 \"2025-10-09T09:14:00.123Z\"");
    }

    #[test]
    fn fields_round_trip() {
        let mut out = Vec::new();
        write_field(&mut out, 7, 12_345);
        let text = std::str::from_utf8(&out).unwrap().trim_matches('"').to_owned();
        assert_eq!(text.len(), 66);
        assert_eq!(decode_field(7, &text), Some(12_345));
        assert_eq!(decode_field(8, &text), None);
        assert_eq!(decode_field(7, &text.to_uppercase().replace("0X", "0x")), Some(12_345));
    }

    /// The BN254 scalar field modulus, as 64 lowercase hex digits.
    const BN254_MODULUS: &str = "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";

    #[test]
    fn fields_are_below_the_bn254_modulus() {
        let mut top_digits = std::collections::BTreeSet::new();
        for tag in [0, 1, 7, u64::MAX] {
            for n in (0..2_000).chain([u64::MAX - 1, u64::MAX]) {
                let mut out = Vec::new();
                write_field(&mut out, tag, n);
                let hex = std::str::from_utf8(&out[3..67]).unwrap();
                assert!(hex < BN254_MODULUS, "{hex} is not a field element");
                assert_eq!(decode_field(tag, &format!("0x{hex}")), Some(n));
                top_digits.insert(hex.as_bytes()[0]);
            }
        }
        assert_eq!(top_digits.len(), 2, "the top digit is still random (0 or 1): {top_digits:?}");
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\n");
        assert_eq!(out, br#""a\"b\\c\u000a""#);
    }
}
