//! `rateguard keys add|set-plan|remove|show|list`: the key registry of
//! `identity.keys = "redis"`, in the Redis of the config's `[store]`; with
//! the file source, `add` prints the `identity.api_keys_file` line.
//! Keys are read in clear and only their SHA-256 leaves this process.

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};
use rateguard_gateway::config::ValidConfig;
use rateguard_store::keys::{digest_hex, RedisKeys};
use sha2::{Digest, Sha256};

use crate::cli::{KeyArgs, KeysAction};

/// Runs one `rateguard keys` command on the config at `path`.
pub(crate) fn run(path: Option<&Path>, action: KeysAction) -> anyhow::Result<()> {
    let path = path.context("give --config or set RATEGUARD_CONFIG")?;
    let (config, _) = crate::load_config(path, &[]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The client's connection task needs the runtime.
    let _runtime = runtime.enter();
    let redis = || {
        if config.key_registry.is_none() {
            bail!(
                "identity.keys is not \"redis\" in {}: keys live in identity.api_keys_file",
                path.display()
            );
        }
        RedisKeys::connect(&config.store.redis_options()).context("the key registry")
    };
    match action {
        KeysAction::Add(args) => {
            let (digest, plan) = (digest(&args)?, plan(&config, &args)?);
            if config.key_registry.is_none() {
                // The file source: the line to append.
                println!("{} {}", digest_hex(&digest), plan.unwrap_or_default());
                return Ok(());
            }
            let keys = redis()?;
            runtime.block_on(async {
                if keys.get(&digest).await?.is_some() {
                    bail!("this key is registered already: use set-plan");
                }
                keys.set(&digest, plan).await?;
                eprintln!("added {} on {}", short(&digest), plan.unwrap_or("no plan"));
                Ok(())
            })
        }
        KeysAction::SetPlan(args) => {
            let (digest, plan) = (digest(&args)?, plan(&config, &args)?);
            let keys = redis()?;
            runtime.block_on(async {
                if keys.get(&digest).await?.is_none() {
                    bail!("this key is not registered: use add");
                }
                keys.set(&digest, plan).await?;
                eprintln!("{} now on {}", short(&digest), plan.unwrap_or("no plan"));
                Ok(())
            })
        }
        KeysAction::Remove(args) => {
            let digest = digest(&args)?;
            let keys = redis()?;
            runtime.block_on(async {
                if !keys.remove(&digest).await? {
                    bail!("this key is not registered");
                }
                eprintln!("removed {}", short(&digest));
                Ok(())
            })
        }
        KeysAction::Show(args) => {
            let digest = digest(&args)?;
            let keys = redis()?;
            runtime.block_on(async {
                let Some(plan) = keys.get(&digest).await? else {
                    bail!("this key is not registered");
                };
                let shown = serde_json::json!({ "sha256": digest_hex(&digest), "plan": plan });
                println!("{shown}");
                Ok(())
            })
        }
        KeysAction::List => {
            let keys = redis()?;
            runtime.block_on(async {
                let (version, registry) = keys.load().await?;
                let mut lines: Vec<String> = registry
                    .iter()
                    .map(|(d, p)| format!("{} {}", digest_hex(d), p.as_deref().unwrap_or("-")))
                    .collect();
                lines.sort();
                for line in &lines {
                    println!("{line}");
                }
                eprintln!("{} keys, version {version}", lines.len());
                Ok(())
            })
        }
    }
}

/// The SHA-256 of the key given (`--key` or the first line of stdin).
fn digest(args: &KeyArgs) -> anyhow::Result<[u8; 32]> {
    let key = match (&args.key, args.key_stdin) {
        (Some(key), _) => key.trim().to_owned(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
        (None, false) => bail!("give --key or --key-stdin"),
    };
    if key.is_empty() {
        bail!("the key is empty");
    }
    Ok(Sha256::digest(key.as_bytes()).into())
}

/// `--plan`, checked against the config's plans.
fn plan<'a>(config: &ValidConfig, args: &'a KeyArgs) -> anyhow::Result<Option<&'a str>> {
    match args.plan.as_deref() {
        None => Ok(None),
        Some(name) if config.plans.iter().any(|p| p.name == name) => Ok(Some(name)),
        Some(name) => {
            let names: Vec<&str> = config.plans.iter().map(|p| p.name.as_str()).collect();
            bail!("no plan named {name:?} in the config (plans: {names:?})")
        }
    }
}

/// What stderr shows of a key: the first 12 hex digits of its digest.
fn short(digest: &[u8; 32]) -> String {
    format!("sha256:{}", &digest_hex(digest)[..12])
}
