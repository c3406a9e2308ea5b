use super::*;

fn load(files: &[(&str, &str)]) -> Result<Limits, LimitsErrors> {
    Limits::load_sources(files)
}

fn errors(files: &[(&str, &str)]) -> Vec<String> {
    load(files)
        .expect_err("expected errors")
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

const MESSAGING: &str = "
domain: messaging
descriptors:
  - key: message_type
    value: marketing
    descriptors:
      - key: to_number
        rate_limit: { unit: day, requests_per_unit: 5 }
  - key: to_number
    rate_limit:
      name: per_number
      unit: DAY
      requests_per_unit: 100
";

#[test]
fn a_valid_file_loads_its_rules_with_labels() {
    let limits = load(&[("messaging.yaml", MESSAGING)]).unwrap();
    assert!(limits.has_domain("messaging"));
    let labels: Vec<String> = limits.rules().iter().map(|r| r.to_string()).collect();
    assert_eq!(
        labels,
        [
            "messaging.message_type_marketing.to_number (5/day)",
            "messaging.per_number (100/day)"
        ]
    );
    let rule = &limits.rules()[0];
    let RuleKind::Limited(limit) = rule.kind else {
        panic!("limited")
    };
    let quota = limit.quota.unwrap();
    assert_eq!(quota.capacity(), 5);
    assert_eq!(quota.fill_time().as_secs(), 86_400);
}

#[test]
fn unknown_keys_are_errors_naming_file_path_and_key() {
    let text = "
domain: d
descriptors:
  - key: a
    rate_limt: { unit: second, requests_per_unit: 1 }
  - key: b
    rate_limit: { unit: second, requests_per_unit: 1, burst: 3 }
    quota_mode: true
";
    assert_eq!(
        errors(&[("edge.yaml", text)]),
        [
            "edge.yaml: descriptors[0].rate_limt: unknown key \"rate_limt\", expected one of \
             key, value, rate_limit, descriptors, shadow_mode, detailed_metric, value_to_metric",
            "edge.yaml: descriptors[1].quota_mode: \"quota_mode\" is not supported by rateguard rls",
            "edge.yaml: descriptors[1].rate_limit.burst: unknown key \"burst\", expected one of \
             name, unit, requests_per_unit, unlimited, replaces",
        ]
    );
}

#[test]
fn duplicate_descriptors_and_domains_are_errors() {
    let a = "
domain: d
descriptors:
  - key: k
    value: v
    descriptors:
      - key: x
      - key: x
  - key: k
    value: v
";
    let b = "domain: d\n";
    assert_eq!(
        errors(&[("a.yaml", a), ("b.yaml", b)]),
        [
            "a.yaml: descriptors[0].descriptors[1].key: duplicate descriptor key \"x\" (no value), \
             first at descriptors[0].descriptors[0]",
            "a.yaml: descriptors[1].key: duplicate descriptor key \"k\" value \"v\", first at descriptors[0]",
            "b.yaml: domain: duplicate domain \"d\" (also in a.yaml)",
        ]
    );
}

#[test]
fn bad_values_name_the_value() {
    let text = "
domain: d
descriptors:
  - key: a
    rate_limit: { unit: fortnight, requests_per_unit: -1 }
  - key: b
    rate_limit: { unlimited: true, unit: second }
  - key: c
    rate_limit: { name: me, unit: second, requests_per_unit: 1, replaces: [{ name: me }] }
  - value: nokey
  - key: e
    rate_limit: { unit: second, requests_per_unit: 3000000 }
    shadow_mode: yes
";
    assert_eq!(
        errors(&[("f.yaml", text)]),
        [
            "f.yaml: descriptors[0].rate_limit.unit: expected one of second, minute, hour, day, \
             week, month, year (or unlimited: true), got \"fortnight\"",
            "f.yaml: descriptors[0].rate_limit.requests_per_unit: must be a whole number from 0 \
             to 4294967295, got -1",
            "f.yaml: descriptors[1].rate_limit.unit: must not be set when unlimited is true, got \"second\"",
            "f.yaml: descriptors[2].rate_limit.replaces[0].name: a limit cannot replace itself (\"me\")",
            "f.yaml: descriptors[3].key: missing (every descriptor has a key)",
            "f.yaml: descriptors[4].shadow_mode: must be true or false, got \"yes\"",
            "f.yaml: descriptors[4].rate_limit.requests_per_unit: 3000000 per second is more than \
             one request per microsecond",
        ]
    );
}

#[test]
fn whole_file_problems_are_reported() {
    assert_eq!(
        errors(&[("x.yaml", "descriptors: []\n")]),
        ["x.yaml: domain: missing (every limits file names its domain)"]
    );
    let bad = errors(&[("y.yaml", "domain: [unclosed\n")]);
    assert!(bad[0].starts_with("y.yaml: invalid YAML: "), "{bad:?}");
    assert_eq!(
        errors(&[("z.yaml", "- a\n")]),
        ["z.yaml: the file must be a mapping, got a list"]
    );
    let dup_key = errors(&[("w.yaml", "domain: a\ndomain: b\n")]);
    assert!(dup_key[0].contains("duplicated key"), "{dup_key:?}");
}

#[test]
fn missing_files_are_errors() {
    let err = Limits::load_files(&["/nonexistent/limits.yaml"]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/limits.yaml: cannot read: "),
        "{err}"
    );
}

#[test]
fn patterns_match_prefix_middle_and_suffix() {
    let p = Pattern::new("/api/*/action");
    assert!(p.matches("/api/123/action"));
    assert!(p.matches("/api//action"));
    assert!(!p.matches("/api/123/other"));
    let trailing = Pattern::new("value*");
    assert!(trailing.matches("value"));
    assert!(trailing.matches("valueXYZ"));
    assert!(!trailing.matches("valu"));
    let multi = Pattern::new("/api/*/resource/*/action");
    assert!(multi.matches("/api/v1/resource/123/action"));
    assert!(!multi.matches("/api/v1/resource/action"));
    assert!(!Pattern::new("ab*ba").matches("aba"));
}
