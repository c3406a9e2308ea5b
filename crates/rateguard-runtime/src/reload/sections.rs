//! Which parts of the config file a reload swaps in and which need a
//! restart, for each command, in one table ([`TABLE`]); [`carry_over`]
//! applies it to a config just read.

use rateguard_contract::RawConfig;

use super::changed_keys;

/// A command that runs replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `rateguard serve`: the HTTP gateway.
    Serve,
    /// `rateguard rls`: the Envoy Rate Limit Service.
    Rls,
}

/// When a change to a section takes effect in a running replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// At once: a reload swaps it in.
    Live,
    /// At the next start: a change is logged as needing a restart, and the
    /// running value stays (`GET /config` shows it).
    Restart,
    /// Never: the command does not read it; the running value stays,
    /// silently.
    Unused,
}

/// A part of the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[server]`.
    Server,
    /// `[upstream]`.
    Upstream,
    /// `[store]`.
    Store,
    /// `[identity]`.
    Identity,
    /// `[[policies]]`.
    Policies,
    /// `[[plans]]` (per-consumer quotas of the policies' limits).
    Plans,
    /// `rls.limits`: the limits files (read again at each reload).
    RlsLimits,
    /// `rls.response_headers`.
    RlsResponseHeaders,
    /// `[admin]` (the admin token, read at start).
    Admin,
}

/// Each section, then when a change to it takes effect under `rateguard
/// serve` and under `rateguard rls`.
pub const TABLE: [(Section, Takes, Takes); 9] = [
    (Section::Server, Takes::Restart, Takes::Restart),
    (Section::Upstream, Takes::Restart, Takes::Unused),
    (Section::Store, Takes::Restart, Takes::Restart),
    (Section::Identity, Takes::Live, Takes::Unused),
    (Section::Policies, Takes::Live, Takes::Unused),
    (Section::Plans, Takes::Live, Takes::Unused),
    (Section::RlsLimits, Takes::Unused, Takes::Live),
    (Section::RlsResponseHeaders, Takes::Unused, Takes::Restart),
    (Section::Admin, Takes::Restart, Takes::Restart),
];

impl Section {
    /// Its key in the file.
    pub const fn key(self) -> &'static str {
        match self {
            Section::Server => "server",
            Section::Upstream => "upstream",
            Section::Store => "store",
            Section::Identity => "identity",
            Section::Policies => "policies",
            Section::Plans => "plans",
            Section::RlsLimits => "rls.limits",
            Section::RlsResponseHeaders => "rls.response_headers",
            Section::Admin => "admin",
        }
    }

    /// When a change to it takes effect under `command` ([`TABLE`]).
    pub fn takes(self, command: Command) -> Takes {
        let (_, serve, rls) = TABLE
            .into_iter()
            .find(|(section, _, _)| *section == self)
            .expect("every section is in the table");
        match command {
            Command::Serve => serve,
            Command::Rls => rls,
        }
    }

    /// Its keys whose values differ between `old` and `new`
    /// (`server.listen`), sorted; the section itself when it is not a table.
    fn changed(self, old: &RawConfig, new: &RawConfig) -> Vec<String> {
        let key = self.key();
        match self {
            Section::Server => changed_keys(key, &old.server, &new.server),
            Section::Upstream => changed_keys(key, &old.upstream, &new.upstream),
            Section::Store => changed_keys(key, &old.store, &new.store),
            Section::Identity => changed_keys(key, &old.identity, &new.identity),
            Section::Policies => changed_keys(key, &old.policies, &new.policies),
            Section::Plans => changed_keys(key, &old.plans, &new.plans),
            Section::RlsLimits => changed_keys(key, &old.rls.limits, &new.rls.limits),
            Section::RlsResponseHeaders => {
                changed_keys(key, &old.rls.response_headers, &new.rls.response_headers)
            }
            Section::Admin => changed_keys(key, &old.admin, &new.admin),
        }
    }

    /// Sets it in `next` to its value in `old`.
    fn keep(self, old: &RawConfig, next: &mut RawConfig) {
        match self {
            Section::Server => next.server = old.server.clone(),
            Section::Upstream => next.upstream = old.upstream.clone(),
            Section::Store => next.store = old.store.clone(),
            Section::Identity => next.identity = old.identity.clone(),
            Section::Policies => next.policies = old.policies.clone(),
            Section::Plans => next.plans = old.plans.clone(),
            Section::RlsLimits => next.rls.limits = old.rls.limits.clone(),
            Section::RlsResponseHeaders => next.rls.response_headers = old.rls.response_headers,
            Section::Admin => next.admin = old.admin.clone(),
        }
    }
}

/// Turns `next`, a config just read, into the one a running replica of
/// `command` that runs `old` goes on with: every section that needs a
/// restart or that `command` does not read keeps its running value.
/// Returns the keys that changed but need a restart, in table order
/// (`["server.listen", "store.urls"]`).
pub fn carry_over(command: Command, old: &RawConfig, next: &mut RawConfig) -> Vec<String> {
    let mut restart = Vec::new();
    for (section, _, _) in TABLE {
        match section.takes(command) {
            Takes::Live => {}
            Takes::Restart => {
                restart.extend(section.changed(old, next));
                section.keep(old, next);
            }
            Takes::Unused => section.keep(old, next),
        }
    }
    restart
}

#[cfg(test)]
mod tests {
    use rateguard_contract::{RawPolicy, ResponseHeaders};

    use super::*;

    fn raw() -> RawConfig {
        let mut raw = RawConfig::new("http://127.0.0.1:9000");
        raw.policies.push(RawPolicy::new("default", 5, 1.0));
        raw.rls.limits = vec!["edge.yaml".into()];
        raw
    }

    /// Every section changed at once.
    fn everything_changed() -> RawConfig {
        let mut next = raw();
        next.server.listen = "127.0.0.1:18080".into();
        next.upstream.url = "http://127.0.0.1:9001".into();
        next.store.timeout_ms = 75;
        next.identity.api_key_header = "x-key".into();
        next.policies[0].capacity = Some(10);
        next.plans.push(rateguard_contract::RawPlan {
            name: "pro".into(),
            limits: Vec::new(),
        });
        next.rls.limits = vec!["other.yaml".into()];
        next.rls.response_headers = ResponseHeaders::Ietf;
        next
    }

    #[test]
    fn serve_swaps_policies_and_identity_and_keeps_the_rest() {
        let old = raw();
        let mut next = everything_changed();
        let restart = carry_over(Command::Serve, &old, &mut next);
        assert_eq!(
            restart,
            ["server.listen", "upstream.url", "store.timeout_ms"]
        );
        assert_eq!(next.server.listen, old.server.listen);
        assert_eq!(next.upstream.url, old.upstream.url);
        assert_eq!(next.store.timeout_ms, old.store.timeout_ms);
        assert_eq!(next.identity.api_key_header, "x-key");
        assert_eq!(next.policies[0].capacity, Some(10));
        assert_eq!(next.plans.len(), 1, "plans reload with the policies");
        assert_eq!(next.rls.limits, old.rls.limits);
        assert_eq!(next.rls.response_headers, old.rls.response_headers);
    }

    #[test]
    fn rls_swaps_its_limits_files_and_keeps_the_rest() {
        let old = raw();
        let mut next = everything_changed();
        let restart = carry_over(Command::Rls, &old, &mut next);
        assert_eq!(
            restart,
            ["server.listen", "store.timeout_ms", "rls.response_headers"]
        );
        assert_eq!(next.rls.limits, ["other.yaml"]);
        assert_eq!(next.upstream.url, old.upstream.url);
        assert_eq!(next.identity.api_key_header, old.identity.api_key_header);
        assert_eq!(next.policies[0].capacity, old.policies[0].capacity);
        assert!(next.plans.is_empty(), "rls does not read plans");
        assert_eq!(next.rls.response_headers, old.rls.response_headers);
    }

    #[test]
    fn nothing_changed_needs_no_restart() {
        for command in [Command::Serve, Command::Rls] {
            let mut next = raw();
            assert!(carry_over(command, &raw(), &mut next).is_empty());
        }
    }
}
