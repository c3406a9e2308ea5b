use proptest::prelude::*;

use super::*;

const REJECT: EncodedSlashes = EncodedSlashes::Reject;
const KEEP: EncodedSlashes = EncodedSlashes::Keep;

fn n(path: &str) -> Result<String, PathError> {
    normalize(path, REJECT).map(Cow::into_owned)
}

fn borrowed(path: &str, slashes: EncodedSlashes) -> bool {
    matches!(normalize(path, slashes), Ok(Cow::Borrowed(_)))
}

/// Spellings of `/api/login` beyond issue 9's ten (those run end to end in
/// `crates/rateguard/tests/e2e/paths.rs`, and through [`spelled`] here).
#[test]
fn every_spelling_of_the_login_route_is_the_login_route_or_refused() {
    for spelling in [
        "/api/x/%2e%2E/login",
        "/api/.%2e/api/login",
        "///api///.//login",
        "/%61%70%69/%6C%6F%67%69%6E",
        "/a/b/../../api/./x/y/../../login",
        "/api/login/.",
    ] {
        let want = if spelling.ends_with('.') {
            "/api/login/"
        } else {
            "/api/login"
        };
        assert_eq!(n(spelling).as_deref(), Ok(want), "{spelling}");
    }
    assert_eq!(
        n("/api/login;a=b"),
        Err(PathError::PathParameter { at: 10 })
    );
    assert_eq!(
        n("/api/x/..;/login"),
        Err(PathError::PathParameter { at: 9 })
    );
}

#[test]
fn canonical_paths_are_borrowed_not_copied() {
    for path in [
        "/",
        "/api/login",
        "/api/login/",
        "/a/b.c/...d/.e/~x_y-z",
        "/caf%C3%A9/%20x",
        "/café",
        "/a%3Bb",
        "/x%25y",
        "/a:b@c!$&'()*+,=",
    ] {
        assert!(borrowed(path, REJECT), "{path}");
        assert_eq!(n(path).as_deref(), Ok(path));
    }
    assert!(borrowed("/a%2Fb/c%5Cd/e\\f", KEEP));
}

#[test]
fn escapes_are_decoded_when_unreserved_and_uppercased_otherwise() {
    assert_eq!(n("/%41%7a%30%2D%2e%5F%7E").as_deref(), Ok("/Az0-._~"));
    assert_eq!(n("/caf%c3%a9").as_deref(), Ok("/caf%C3%A9"));
    assert_eq!(n("/a%3bb").as_deref(), Ok("/a%3Bb"));
    // %25 is '%': never decoded, so no double decoding.
    assert_eq!(n("/%2561").as_deref(), Ok("/%2561"));
    assert_eq!(n("/%252e%252e/x").as_deref(), Ok("/%252e%252e/x"));
}

#[test]
fn slashes_merge_and_dot_segments_go_keeping_a_trailing_slash() {
    for (input, want) in [
        ("//", "/"),
        ("/.", "/"),
        ("/./", "/"),
        ("/a/", "/a/"),
        ("/a//", "/a/"),
        ("/a/.", "/a/"),
        ("/a/b/..", "/a/"),
        ("/a/..", "/"),
        ("/a/../", "/"),
        ("/a/b/../../c", "/c"),
        ("/a//../b", "/b"),
        ("/a/./b/./", "/a/b/"),
        ("/a/.../b", "/a/.../b"),
        ("/a/..b/c.", "/a/..b/c."),
    ] {
        assert_eq!(n(input).as_deref(), Ok(want), "{input}");
    }
}

#[test]
fn what_cannot_be_normalized_safely_is_refused_with_its_position() {
    assert_eq!(n("/.."), Err(PathError::AboveRoot));
    assert_eq!(n("/a/../../b"), Err(PathError::AboveRoot));
    assert_eq!(n("/%2e%2e/etc"), Err(PathError::AboveRoot));
    assert_eq!(n("/a%zz"), Err(PathError::BadPercentEncoding { at: 2 }));
    assert_eq!(n("/a%4"), Err(PathError::BadPercentEncoding { at: 2 }));
    assert_eq!(n("/a%"), Err(PathError::BadPercentEncoding { at: 2 }));
    assert_eq!(n("/a%00b"), Err(PathError::EncodedNul { at: 2 }));
    assert_eq!(
        normalize("/a%00", KEEP),
        Err(PathError::EncodedNul { at: 2 })
    );
    for (path, text) in [
        ("/api%2Flogin", "%2F"),
        ("/api%2flogin", "%2f"),
        ("/api%5Clogin", "%5C"),
        ("/api%5clogin", "%5c"),
        ("/api\\login", "\\"),
    ] {
        assert_eq!(
            n(path),
            Err(PathError::EncodedSlash { at: 4, text }),
            "{path}"
        );
    }
    assert_eq!(n("*"), Err(PathError::NotAbsolute));
    assert_eq!(n(""), Err(PathError::NotAbsolute));
    assert_eq!(
        n("/a;b").unwrap_err().to_string(),
        "';' at byte 2: path parameters are refused"
    );
    assert_eq!(
        n("/a%2fb").unwrap_err().to_string(),
        "\"%2f\" at byte 2: encoded slashes and backslashes are refused (server.encoded_slashes = \"reject\")"
    );
}

#[test]
fn keep_leaves_encoded_slashes_as_data_inside_a_segment() {
    let k = |p| normalize(p, KEEP).map(Cow::into_owned);
    assert_eq!(k("/a%2fb/%5cc").as_deref(), Ok("/a%2Fb/%5Cc"));
    // An encoded slash is not a separator: `..` removes the whole segment.
    assert_eq!(k("/a%2Fb/../c").as_deref(), Ok("/c"));
    assert_eq!(k("/a\\b").as_deref(), Ok("/a\\b"));
    assert_eq!(k("/a;b"), Err(PathError::PathParameter { at: 2 }));
    assert_eq!(
        EncodedSlashes::ALL.map(EncodedSlashes::as_str),
        ["reject", "keep"]
    );
}

fn is_dot_segment(segment: &str) -> bool {
    segment == "." || segment == ".."
}

/// Pieces that random paths are made of: every rule's trigger, in many cases.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/", "/", "/", ".", "..", "a", "b", "~", "-", "%2e", "%2E", "%61", "%6c", "%6C", "%41",
        "%7e", "%20", "%c3%a9", "é", "%2f", "%2F", "%5c", "%5C", "\\", "%00", "%25", "%3b", ";",
        "%", "%z", "%4", "x=1", "%C3", "%3F",
    ])
}

fn random_path() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..14).prop_map(|p| format!("/{}", p.concat()))
}

/// A canonical path and one of its many spellings.
fn spelled() -> impl Strategy<Value = (String, String)> {
    let segment = "[a-z0-9._~-]{1,6}".prop_filter("not a dot segment", |s| !is_dot_segment(s));
    let spelling = (segment, prop::collection::vec(0u8..6, 1..4));
    prop::collection::vec(spelling, 1..5).prop_map(|segments| {
        let canonical: String = segments.iter().map(|(s, _)| format!("/{s}")).collect();
        let mut spelled = String::new();
        for (segment, tricks) in &segments {
            for trick in tricks {
                spelled.push_str(match trick {
                    0 => "/",
                    1 => "/.",
                    2 => "/x/..",
                    3 => "/%2E",
                    4 => "/y/%2e%2E",
                    _ => "",
                });
            }
            spelled.push('/');
            for (i, c) in segment.chars().enumerate() {
                match i % 3 {
                    0 => spelled.push_str(&format!("%{:02x}", c as u32)),
                    1 => spelled.push_str(&format!("%{:02X}", c as u32)),
                    _ => spelled.push(c),
                }
            }
        }
        (canonical, spelled)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn normalizing_twice_changes_nothing(path in random_path()) {
        for slashes in EncodedSlashes::ALL {
            if let Ok(once) = normalize(&path, slashes) {
                // The output is recognised as canonical: borrowed, unchanged.
                prop_assert!(borrowed(&once, slashes), "{path:?} -> {once:?}");
                let twice = normalize(&once, slashes).map(Cow::into_owned);
                prop_assert_eq!(twice, Ok(once.into_owned()));
            }
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_rewrite(path in random_path()) {
        for slashes in EncodedSlashes::ALL {
            if is_canonical(&path, slashes) {
                prop_assert_eq!(rewrite(&path, slashes), Ok(path.clone()));
            }
        }
    }

    #[test]
    fn every_spelling_of_a_path_normalizes_to_it((canonical, spelled) in spelled()) {
        prop_assert_eq!(n(&spelled), Ok(canonical.clone()), "{}", spelled);
        let kept = normalize(&spelled, KEEP).map(Cow::into_owned);
        prop_assert_eq!(kept, Ok(canonical));
    }

    #[test]
    fn keep_refuses_a_subset_of_what_reject_refuses(path in random_path()) {
        if normalize(&path, REJECT).is_ok() {
            prop_assert_eq!(normalize(&path, REJECT), normalize(&path, KEEP));
        }
    }
}
