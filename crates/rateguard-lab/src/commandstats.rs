//! Redis commands per request, from `INFO commandstats` before and after.

use std::collections::BTreeMap;

use rateguard_contract::{Backend, StoreKind};
use rateguard_testkit::{RedisCluster, RedisServer};

use crate::LabError;

/// Commands the lab itself sends to read the stats (not the gateway's).
const OWN_COMMANDS: [&str; 1] = ["info"];

/// Calls per command name, summed over every node measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandStats(pub BTreeMap<String, u64>);

impl CommandStats {
    /// Parses `INFO commandstats` output (`cmdstat_evalsha:calls=12,usec=...`).
    pub fn parse(info: &str) -> Self {
        let mut map = BTreeMap::new();
        for line in info.lines() {
            let Some(rest) = line.trim().strip_prefix("cmdstat_") else {
                continue;
            };
            let Some((name, fields)) = rest.split_once(':') else {
                continue;
            };
            let calls = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(calls) = calls {
                *map.entry(name.to_owned()).or_insert(0) += calls;
            }
        }
        Self(map)
    }

    /// Adds another node's counts.
    pub fn add(&mut self, other: &Self) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Gateway calls per command since `before` (the lab's own `INFO`
    /// excluded, commands with no new calls left out).
    pub fn since(&self, before: &Self) -> BTreeMap<String, u64> {
        self.0
            .iter()
            .filter(|(k, _)| !OWN_COMMANDS.contains(&k.as_str()))
            .map(|(k, v)| {
                let d = v.saturating_sub(before.0.get(k).copied().unwrap_or(0));
                (k.clone(), d)
            })
            .filter(|(_, d)| *d > 0)
            .collect()
    }

    /// All gateway calls since `before`.
    pub fn calls_since(&self, before: &Self) -> u64 {
        self.since(before).values().sum()
    }

    /// Lua script calls (`evalsha` + `eval`) since `before`.
    pub fn script_calls_since(&self, before: &Self) -> u64 {
        let d = self.since(before);
        SCRIPT_COMMANDS.iter().filter_map(|c| d.get(*c)).sum()
    }
}

/// The commands that run the token-bucket script: one round trip each.
pub const SCRIPT_COMMANDS: [&str; 2] = ["evalsha", "eval"];

/// One [`CommandStats`] per node of a store, in node order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStats(pub Vec<CommandStats>);

impl NodeStats {
    /// Every node's counts together.
    pub fn total(&self) -> CommandStats {
        let mut total = CommandStats::default();
        for node in &self.0 {
            total.add(node);
        }
        total
    }

    /// Lua script calls per node since `before` (taken on the same nodes).
    pub fn script_calls_since(&self, before: &Self) -> Vec<u64> {
        let empty = CommandStats::default();
        self.0
            .iter()
            .enumerate()
            .map(|(i, n)| n.script_calls_since(before.0.get(i).unwrap_or(&empty)))
            .collect()
    }
}

/// The current counts of the store behind `store`, per node: the
/// standalone server, every cluster node, or `None` for `memory`.
pub async fn snapshot(
    store: StoreKind,
    redis: Option<&RedisServer>,
    cluster: Option<&RedisCluster>,
) -> Result<Option<NodeStats>, LabError> {
    const INFO: [&str; 2] = ["INFO", "commandstats"];
    match store.backend() {
        Backend::Redis => match redis {
            Some(r) => Ok(Some(NodeStats(vec![CommandStats::parse(
                &r.cli(&INFO).await?,
            )]))),
            None => Ok(None),
        },
        Backend::RedisCluster => match cluster {
            Some(c) => {
                let mut nodes = Vec::new();
                for i in 0..c.ports().len() {
                    nodes.push(CommandStats::parse(&c.cli(i, &INFO).await?));
                }
                Ok(Some(NodeStats(nodes)))
            }
            None => Ok(None),
        },
        Backend::InProcess => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_subtracts_without_info() {
        let before = CommandStats::parse(
            "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=50,usec_per_call=5.00\r\ncmdstat_info:calls=1,usec=9\r\n",
        );
        let after = CommandStats::parse(
            "cmdstat_evalsha:calls=110,usec=550\ncmdstat_script|load:calls=1,usec=3\ncmdstat_info:calls=2,usec=18\n",
        );
        assert_eq!(after.calls_since(&before), 101);
        let by_name = after.since(&before);
        assert_eq!(by_name.get("evalsha"), Some(&100));
        assert_eq!(by_name.get("script|load"), Some(&1));
        assert!(!by_name.contains_key("info"));
        let mut sum = before.clone();
        sum.add(&after);
        assert_eq!(sum.0["evalsha"], 120);
        assert_eq!(after.script_calls_since(&before), 100);
        let nodes = NodeStats(vec![after.clone(), before.clone()]);
        let earlier = NodeStats(vec![before.clone(), before]);
        assert_eq!(nodes.script_calls_since(&earlier), [100, 0]);
        assert_eq!(nodes.total().0["evalsha"], 120);
    }
}
