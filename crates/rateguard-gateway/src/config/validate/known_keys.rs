//! `identity.api_keys_file`: the known API keys, one SHA-256 hex digest
//! per line (blank lines and `#` comments skipped), read at start-up.

use std::collections::HashSet;

use super::Check;

const KEY: &str = "identity.api_keys_file";

/// The digests in the file at `path`, or its problems under [`KEY`].
pub(super) fn read(check: &mut Check, path: &str) -> Option<HashSet<[u8; 32]>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            check.fail(KEY, format!("cannot read {path:?}: {e}"));
            return None;
        }
    };
    let mut digests = HashSet::new();
    let mut ok = true;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_digest(line) {
            Some(digest) => {
                digests.insert(digest);
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
