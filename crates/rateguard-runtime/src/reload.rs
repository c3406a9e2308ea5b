//! Hot reload: on `SIGHUP` (and, with `watch_config`, when the files
//! change) a running process reads its config again and swaps in what can
//! change while it serves.
//!
//! - The binary owns the file and the environment: it hands the process a
//!   [`ReloadSource`], a closure that reads the file again with the same
//!   `RATEGUARD_*` and flag overrides as at start. Nothing here reads the
//!   environment.
//! - The new config is checked fully first. Invalid: every problem is
//!   logged as `check-config` prints it (`policies[0].capacity: must be >
//!   0, got -5`), `rateguard_config_reloads_total{result="error"}` counts
//!   it, and the running config stays.
//! - Valid: the target ([`Reload`]: the gateway's live part, `rateguard
//!   rls`'s service) swaps in what [`sections`] says reloads live for its
//!   command (`policies` and `identity`; the `rls` limits files) and names
//!   the keys that changed but only take effect at a restart, which are
//!   logged as such and left as they run. The new config's hash is exported
//!   as `rateguard_config_info{hash}` (see [`ActiveConfig`]).
//!
//! With `[server] watch_config = true` the source is also read every
//! [`WATCH_EVERY`], and applied when what it read changed (its
//! [`Reload::read_hash`]: the file, `api_keys_file`, the `rls` limits
//! files); a bad file is logged and counted once, not every second.
//!
//! A swap is one atomic pointer store: a request in flight keeps the policy
//! it started with, the next one sees the new set; no connection is
//! touched. Bucket keys are made of policy and limit names, so a policy
//! that keeps its name and limits keeps its buckets, and a changed
//! capacity or rate applies to them from the next request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rateguard_contract::metrics::ReloadResult;
use serde::Serialize;

use crate::error::ConfigErrors;
use crate::metrics::ConfigMetrics;

mod active;
pub mod sections;

pub use active::{api_keys_summary, ActiveConfig};
pub use sections::{carry_over, Command, Section, Takes};

/// Reads the config again, as the binary read it at start.
pub struct ReloadSource<C> {
    load: Arc<dyn Fn() -> Result<C, ConfigErrors> + Send + Sync>,
}

impl<C> Clone for ReloadSource<C> {
    fn clone(&self) -> Self {
        Self {
            load: self.load.clone(),
        }
    }
}

impl<C> std::fmt::Debug for ReloadSource<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadSource").finish_non_exhaustive()
    }
}

impl<C> ReloadSource<C> {
    /// A source that calls `load` (blocking file reads are fine: it runs
    /// on Tokio's blocking pool).
    pub fn new(load: impl Fn() -> Result<C, ConfigErrors> + Send + Sync + 'static) -> Self {
        Self {
            load: Arc::new(load),
        }
    }

    /// Reads and checks the config now.
    pub fn load(&self) -> Result<C, ConfigErrors> {
        (self.load)()
    }
}

/// How often `[server] watch_config = true` reads the files again.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// A running service whose live part a reload replaces.
pub trait Reload: Send + Sync + 'static {
    /// What the source gives: a fully checked config.
    type Config: Send + 'static;

    /// Swaps in what can change live from `next`; returns the keys that
    /// differ from the running config but need a restart (left as they
    /// run), e.g. `["server.listen", "store.urls"]`.
    fn apply(&self, next: Self::Config) -> Vec<String>;

    /// Where reloads are counted and the active hash exported.
    fn config_metrics(&self) -> &ConfigMetrics;

    /// The hash of `config` as read (the [`ActiveConfig`] hash it would
    /// have with nothing kept from the running one): the watcher reloads
    /// when it changes.
    fn read_hash(config: &Self::Config) -> String;

    /// The hash of the config as read at start, if known.
    fn start_hash(&self) -> Option<String>;
}

/// Reads and checks the config from `source` on Tokio's blocking pool.
async fn load<C: Send + 'static>(source: &ReloadSource<C>) -> Result<C, ConfigErrors> {
    let load = source.clone();
    tokio::task::spawn_blocking(move || load.load())
        .await
        .unwrap_or_else(|e| {
            Err(ConfigErrors(vec![crate::error::ConfigError::Syntax(
                format!("reading the config failed: {e}"),
            )]))
        })
}

/// Applies a loaded config (or refuses a bad one) to `target`, logging and
/// counting the outcome.
fn apply_loaded<R: Reload>(target: &R, loaded: Result<R::Config, ConfigErrors>) -> ReloadResult {
    let result = match loaded {
        Ok(next) => {
            for key in target.apply(next) {
                tracing::warn!(
                    key,
                    "Config reload: needs a restart: {key} (changed in the file; the running value stays)."
                );
            }
            tracing::info!("Config reloaded.");
            ReloadResult::Ok
        }
        Err(errors) => {
            for error in &errors.0 {
                tracing::error!("Config reload refused: {error}");
            }
            tracing::error!(
                problems = errors.0.len(),
                "Config reload refused; the running config stays."
            );
            ReloadResult::Error
        }
    };
    target.config_metrics().reloaded(result);
    result
}

/// Reads the config from `source` and applies it to `target`, logging and
/// counting the outcome.
pub async fn reload_once<R: Reload>(target: &R, source: &ReloadSource<R::Config>) -> ReloadResult {
    apply_loaded(target, load(source).await)
}

/// What the watcher saw last: the read hash of a good config, or the
/// problems of a bad one (so one bad file is logged and counted once).
fn seen<R: Reload>(loaded: &Result<R::Config, ConfigErrors>) -> String {
    match loaded {
        Ok(config) => R::read_hash(config),
        Err(errors) => format!("error: {errors}"),
    }
}

/// Reloads `target` from `source` on every `SIGHUP`, and with `watch`
/// also whenever what the source reads changes (read every `watch`;
/// a file that changes and changes back in between is not noticed),
/// until `shutdown`. The signal handler is installed before this returns
/// (so a `SIGHUP` sent once the process serves never kills it); the loop
/// runs on a spawned task.
pub fn spawn_reloader<R: Reload>(
    target: Arc<R>,
    source: ReloadSource<R::Config>,
    watch: Option<Duration>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    #[cfg(unix)]
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let mut last_seen = target.start_hash();
        // Not polled without `watch`.
        let mut tick = tokio::time::interval(watch.unwrap_or(Duration::from_secs(86_400)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            #[cfg(unix)]
            let hangup = hangups.recv();
            #[cfg(not(unix))]
            let hangup = std::future::pending::<Option<()>>();
            tokio::select! {
                () = &mut shutdown => return,
                got = hangup => {
                    if got.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP: reloading the config.");
                    let loaded = load(&source).await;
                    last_seen = Some(seen::<R>(&loaded));
                    apply_loaded(&*target, loaded);
                }
                _ = tick.tick(), if watch.is_some() => {
                    let loaded = load(&source).await;
                    let now = seen::<R>(&loaded);
                    if last_seen.as_ref() != Some(&now) {
                        tracing::info!("The config changed on disk: reloading it.");
                        last_seen = Some(now);
                        apply_loaded(&*target, loaded);
                    }
                }
            }
        }
    });
    Ok(())
}

/// The keys of section `section` whose values differ between `old` and
/// `new` (`"server.listen"`), sorted; `section` itself when it is not a
/// table.
pub fn changed_keys(section: &str, old: &impl Serialize, new: &impl Serialize) -> Vec<String> {
    let (old, new) = (to_json(old), to_json(new));
    match (&old, &new) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| format!("{section}.{k}"))
                .collect()
        }
        _ if old != new => vec![section.to_owned()],
        _ => Vec::new(),
    }
}

fn to_json(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests;
