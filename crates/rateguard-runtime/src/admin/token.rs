//! [`AdminToken`]: the bearer token of the admin API's bucket endpoints
//! (`[admin] token_file`), kept only as its SHA-256 and compared in
//! constant time.

use http::header::AUTHORIZATION;
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// The admin token: what `Authorization: Bearer <token>` must carry.
///
/// Holds the token's SHA-256 only; `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// The token `text` (surrounding whitespace ignored); `None` if empty.
    pub fn new(text: &str) -> Option<Self> {
        let token = text.trim();
        (!token.is_empty()).then(|| Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// The token in the file at `path`, or why not (the message never
    /// shows the file's content).
    pub fn read(path: &str) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
        Self::new(&text).ok_or_else(|| format!("{path:?} is empty: write the token on one line"))
    }

    /// Whether `headers` carry `Authorization: Bearer <this token>`. The
    /// comparison takes the same time whatever the guess (SHA-256 of the
    /// candidate, then every byte compared).
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(candidate) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(candidate.trim().as_bytes()).into();
        digest
            .iter()
            .zip(&self.digest)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_the_bearer_token_itself_is_accepted() {
        let token = AdminToken::new(" s3cret\n").unwrap();
        assert!(token.accepts(&bearer("Bearer s3cret")));
        assert!(!token.accepts(&bearer("Bearer s3cre")));
        assert!(!token.accepts(&bearer("Bearer s3cret2")));
        assert!(!token.accepts(&bearer("Basic s3cret")));
        assert!(!token.accepts(&bearer("s3cret")));
        assert!(!token.accepts(&HeaderMap::new()));
        assert!(AdminToken::new(" \n").is_none());
        assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
    }
}
