//! `identity.api_keys_file`: the known API keys, one SHA-256 hex digest
//! per line, optionally followed by the name of the key's plan
//! (`<digest> pro`; blank lines and `#` comments skipped), read at
//! start-up and at each reload.

use super::Check;
use crate::config::KnownKeys;

const KEY: &str = "identity.api_keys_file";

/// The digests in the file at `path` with their plans (indices into
/// `plans`), or its problems under [`KEY`].
pub(super) fn read(check: &mut Check, path: &str, plans: &[&str]) -> Option<KnownKeys> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            check.fail(KEY, format!("cannot read {path:?}: {e}"));
            return None;
        }
    };
    let mut digests = KnownKeys::new();
    let mut ok = true;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (digest, plan) = (words.next().unwrap_or(""), words.next());
        let plan = match (plan, words.next()) {
            (None, _) => Some(None),
            (Some(name), None) => plans.iter().position(|p| *p == name).map(Some),
            (Some(_), Some(_)) => None,
        };
        let Some(plan) = plan else {
            ok = false;
            let names = plans.join(", ");
            check.fail(
                KEY,
                format!(
                    "line {} of {path:?}: expected `<sha256 hex> [plan]` with a plan of [[plans]] ({names}), got {line:?}",
                    n + 1
                ),
            );
            continue;
        };
        match parse_digest(digest) {
            Some(digest) => {
                digests.insert(digest, plan);
            }
            None => {
                ok = false;
                check.fail(
                    KEY,
                    format!(
                        "line {} of {path:?}: expected a SHA-256 digest (64 hex digits), got {line:?}",
                        n + 1
                    ),
                );
            }
        }
    }
    ok.then_some(digests)
}

/// 64 hex digits (either case) as 32 bytes.
fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(text, &mut digest).ok()?;
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_in_either_case_and_nothing_else_does() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let expected = parse_digest(abc).unwrap();
        assert_eq!(expected[0], 0xba);
        assert_eq!(expected[31], 0xad);
        assert_eq!(parse_digest(&abc.to_uppercase()), Some(expected));
        for bad in [
            "",
            "abc",
            &abc[1..],
            &format!("{abc}0"),
            &abc.replace('b', "g"),
        ] {
            assert_eq!(parse_digest(bad), None, "{bad:?}");
        }
    }
}
