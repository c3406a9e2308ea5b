//! [`LimitKey`]: what one limit of a policy counts requests by
//! (`[[policies.limits]] key = ...`).

use std::fmt;
use std::str::FromStr;

use crate::UnknownName;

/// What a limit keys its buckets on: one bucket per distinct value.
///
/// ```
/// use rateguard_contract::LimitKey;
///
/// assert_eq!("ip".parse::<LimitKey>().unwrap(), LimitKey::Ip);
/// let tenant: LimitKey = "header:X-Tenant".parse().unwrap();
/// assert_eq!(tenant, LimitKey::Header("x-tenant".into()));
/// assert_eq!(tenant.to_string(), "header:x-tenant");
/// assert_eq!(
///     "ipp".parse::<LimitKey>().unwrap_err().to_string(),
///     "unknown key kind \"ipp\", expected one of client, ip, api_key, header:<name>, global"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitKey {
    /// The API key when the request has one, else the client IP (the
    /// single-limit form of a policy).
    Client,
    /// The client IP, as identity resolves it (trusted proxies apply).
    Ip,
    /// The API key; the limit does not apply to a request without one.
    ApiKey,
    /// The value of a request header (name lowercased); the limit does not
    /// apply to a request without it.
    Header(String),
    /// One bucket for the whole policy: every client together.
    Global,
}

impl LimitKey {
    /// Every spelling, as error messages list them.
    pub const IDS: [&'static str; 5] = ["client", "ip", "api_key", "header:<name>", "global"];

    /// The kind's id without a header name (`header` for [`LimitKey::Header`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Ip => "ip",
            Self::ApiKey => "api_key",
            Self::Header(_) => "header",
            Self::Global => "global",
        }
    }

    /// The limit's name when the file gives none: the kind's id, or
    /// `header-<name>` for a header.
    pub fn default_name(&self) -> String {
        match self {
            Self::Header(name) => format!("header-{name}"),
            other => other.kind().to_owned(),
        }
    }
}

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(name) => write!(f, "header:{name}"),
            other => f.write_str(other.kind()),
        }
    }
}

impl FromStr for LimitKey {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client" => Ok(Self::Client),
            "ip" => Ok(Self::Ip),
            "api_key" => Ok(Self::ApiKey),
            "global" => Ok(Self::Global),
            _ => match s.strip_prefix("header:") {
                Some(name) if !name.is_empty() => Ok(Self::Header(name.to_ascii_lowercase())),
                _ => Err(UnknownName {
                    what: "key kind",
                    value: s.to_owned(),
                    expected: &Self::IDS,
                }),
            },
        }
    }
}

impl serde::Serialize for LimitKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for LimitKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_names_itself() {
        for (text, key, name) in [
            ("client", LimitKey::Client, "client"),
            ("ip", LimitKey::Ip, "ip"),
            ("api_key", LimitKey::ApiKey, "api_key"),
            ("global", LimitKey::Global, "global"),
            (
                "header:x-tenant",
                LimitKey::Header("x-tenant".into()),
                "header-x-tenant",
            ),
        ] {
            assert_eq!(text.parse::<LimitKey>().unwrap(), key);
            assert_eq!(key.to_string(), text);
            assert_eq!(key.default_name(), name);
            let json = serde_json::to_string(&key).unwrap();
            assert_eq!(json, format!("{text:?}"));
            assert_eq!(serde_json::from_str::<LimitKey>(&json).unwrap(), key);
        }
        assert_eq!(LimitKey::Header("h".into()).kind(), "header");
    }

    #[test]
    fn unknown_kinds_and_nameless_headers_list_the_kinds() {
        for bad in ["ipp", "header:", "header", "Client", ""] {
            let err = bad.parse::<LimitKey>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("unknown key kind {bad:?}, expected one of client, ip, api_key, header:<name>, global")
            );
        }
        let err = serde_json::from_str::<LimitKey>("\"ipp\"").unwrap_err();
        assert!(
            err.to_string().starts_with("unknown key kind \"ipp\""),
            "{err}"
        );
    }
}
