//! One canonical request path: the path policies are matched on is the path
//! the upstream receives.
//!
//! Backends (and NGINX) treat `/api//login`, `/api/./login`, `/api/%6cogin`
//! and `/api/x/../login` as `/api/login`; a gateway that matched on the raw
//! text would let each spelling escape the `/api/login` policy. [`normalize`]
//! applies, in this order (RFC 3986 §6.2.2, Envoy's `normalize_path` +
//! `merge_slashes`):
//!
//! 1. **Percent-encodings**: `%` must be followed by two hex digits. Encoded
//!    unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded (`%61` → `a`,
//!    `%2e` → `.`); every other encoding is kept with uppercase hex (`%c3` →
//!    `%C3`). Nothing else is ever decoded, so `%25` stays `%25` (no double
//!    decoding).
//! 2. **Repeated slashes** are merged (`//a///b` → `/a/b`); a trailing slash
//!    is kept (`/a/` stays `/a/`).
//! 3. **Dot segments** are removed (`/a/./b` → `/a/b`, `/a/x/../b` → `/a/b`,
//!    `/a/b/..` → `/a/`), after step 2, as NGINX does (`/a//../b` → `/b`).
//!
//! Refused (the gateway answers `400 {"error":"bad_request",...}` and
//! forwards nothing), because no single reading is safe:
//! - invalid percent-encoding (`%zz`, a `%` near the end);
//! - an encoded NUL (`%00`);
//! - an encoded slash or backslash (`%2F`, `%5C`, any case) or a raw `\`,
//!   under `EncodedSlashes::Reject` (the default): some backends decode
//!   them into separators, others do not. `EncodedSlashes::Keep` keeps
//!   them as data inside a segment (`%2F`, `%5C` uppercased, `\` as is);
//! - a `..` that would climb above the root (`/../etc`);
//! - **any `;`** in the path. Java servlet containers strip `;` path
//!   parameters (`/api/login;a=b` and even `/api/x/..;/login` are
//!   `/api/login` to Tomcat) while the gateway would match them as other
//!   paths; rather than guess which parameters a backend drops, the request
//!   is refused (as Spring Security's `StrictHttpFirewall` does). An encoded
//!   `%3B` is kept: no backend splits parameters on it.
//! - a path that does not start with `/` (e.g. the asterisk form `*`).
//!
//! Matching stays case-sensitive: `/API/login` is another path.
//!
//! The common case, a path that is already canonical, is recognised in one
//! pass over its bytes and returned borrowed: no allocation. Only paths that
//! need rewriting are copied. The `percent-encoding` crate decodes every
//! escape, which is exactly what must not happen here, so the few lines of
//! hex handling are our own.

use std::borrow::Cow;

/// What to do with `%2F`, `%5C` and a raw `\` (`[server] encoded_slashes`;
/// defined with the config schema in `rateguard-contract`).
pub use rateguard_contract::EncodedSlashes;

/// Why a path cannot be normalized safely (answered `400`). Byte offsets
/// count from the start of the path as received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("the path must start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-encoding at byte {at}: '%' must be followed by two hex digits")]
    BadPercentEncoding {
        /// Offset of the `%`.
        at: usize,
    },
    /// `%00`.
    #[error("encoded NUL (%00) at byte {at}")]
    EncodedNul {
        /// Offset of the `%`.
        at: usize,
    },
    /// `%2F`, `%5C` or `\` under `EncodedSlashes::Reject`.
    #[error("{text:?} at byte {at}: encoded slashes and backslashes are refused (server.encoded_slashes = \"reject\")")]
    EncodedSlash {
        /// Offset of the escape or backslash.
        at: usize,
        /// The offending text as sent (`%2f`, `%5C`, `\`).
        text: &'static str,
    },
    /// A `;` path parameter.
    #[error("';' at byte {at}: path parameters are refused")]
    PathParameter {
        /// Offset of the `;`.
        at: usize,
    },
    /// More `..` segments than there are segments before them.
    #[error("'..' climbs above the root")]
    AboveRoot,
}

/// The canonical form of `path` (no query string), borrowed when `path` is
/// already canonical. See the module documentation for the rules.
///
/// ```
/// use rateguard_gateway::path::{normalize, EncodedSlashes};
/// let n = |p| normalize(p, EncodedSlashes::Reject);
/// assert_eq!(n("/api//./x/../%6Cogin").unwrap(), "/api/login");
/// assert!(matches!(n("/api/login").unwrap(), std::borrow::Cow::Borrowed(_)));
/// assert!(n("/api/login;a=b").is_err());
/// ```
pub fn normalize(path: &str, slashes: EncodedSlashes) -> Result<Cow<'_, str>, PathError> {
    if is_canonical(path, slashes) {
        Ok(Cow::Borrowed(path))
    } else {
        rewrite(path, slashes).map(Cow::Owned)
    }
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// Whether the escape `%hi lo` may stay exactly as written.
fn is_canonical_escape(hi: u8, lo: u8, slashes: EncodedSlashes) -> bool {
    let upper = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
    let (Some(h), Some(l)) = (hex(hi), hex(lo)) else {
        return false;
    };
    let byte = h << 4 | l;
    let slash = byte == b'/' || byte == b'\\';
    upper(hi)
        && upper(lo)
        && !is_unreserved(byte)
        && byte != 0
        && (!slash || slashes == EncodedSlashes::Keep)
}

/// One pass, no allocation: true when [`rewrite`] would return `path`
/// unchanged. May say false for a canonical path (then `rewrite` copies it);
/// must never say true for a path that is not canonical.
fn is_canonical(path: &str, slashes: EncodedSlashes) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    // Every segment but the last must be non-empty; none may be a dot segment.
    let plain = |segment: &[u8]| !segment.is_empty() && segment != b"." && segment != b"..";
    let mut segment_start = 1;
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'/' => {
                if !plain(&bytes[segment_start..i]) {
                    return false;
                }
                segment_start = i + 1;
                i += 1;
            }
            b'%' => {
                let escape = bytes.get(i + 1).zip(bytes.get(i + 2));
                if !escape.is_some_and(|(&hi, &lo)| is_canonical_escape(hi, lo, slashes)) {
                    return false;
                }
                i += 3;
            }
            b';' => return false,
            b'\\' if slashes == EncodedSlashes::Reject => return false,
            _ => i += 1,
        }
    }
    let last = &bytes[segment_start..];
    last.is_empty() || plain(last)
}

/// Steps 1-3 of the module documentation into a new string.
fn rewrite(path: &str, slashes: EncodedSlashes) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = decode(path, slashes)?;
    let mut out = String::with_capacity(decoded.len());
    // Byte offsets in `out` where each kept segment's leading '/' starts.
    let mut starts: Vec<usize> = Vec::new();
    let mut raw = decoded[1..].split('/').peekable();
    let mut trailing = false;
    while let Some(segment) = raw.next() {
        let last = raw.peek().is_none();
        match segment {
            "" | "." => trailing = last,
            ".." => {
                let start = starts.pop().ok_or(PathError::AboveRoot)?;
                out.truncate(start);
                trailing = last;
            }
            _ => {
                starts.push(out.len());
                out.push('/');
                out.push_str(segment);
                trailing = false;
            }
        }
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Step 1: checks every `%`, decodes the unreserved ones, uppercases the
/// rest, and applies the `;`, `\` and NUL rules.
fn decode(path: &str, slashes: EncodedSlashes) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    // Text since the last special byte, copied as is (special bytes are
    // ASCII, so every cut is on a character boundary).
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push_str(&path[copied..i]);
                let pair = bytes.get(i + 1).zip(bytes.get(i + 2));
                let (hi, lo) = pair
                    .and_then(|(&hi, &lo)| hex(hi).zip(hex(lo)))
                    .ok_or(PathError::BadPercentEncoding { at: i })?;
                let escape = &path[i..i + 3];
                match hi << 4 | lo {
                    0 => return Err(PathError::EncodedNul { at: i }),
                    byte @ (b'/' | b'\\') if slashes == EncodedSlashes::Reject => {
                        let text = match (byte, escape.ends_with(['f', 'c'])) {
                            (b'/', false) => "%2F",
                            (b'/', true) => "%2f",
                            (_, false) => "%5C",
                            (_, true) => "%5c",
                        };
                        return Err(PathError::EncodedSlash { at: i, text });
                    }
                    byte if is_unreserved(byte) => out.push(char::from(byte)),
                    _ => {
                        out.push('%');
                        out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                        out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
                    }
                }
                i += 3;
                copied = i;
            }
            b';' => return Err(PathError::PathParameter { at: i }),
            b'\\' if slashes == EncodedSlashes::Reject => {
                return Err(PathError::EncodedSlash { at: i, text: "\\" })
            }
            _ => i += 1,
        }
    }
    out.push_str(&path[copied..]);
    Ok(out)
}

#[cfg(test)]
mod tests;
