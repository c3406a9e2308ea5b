//! Closed-model runs on goose: `users` users, each sending its next request
//! when the previous one has finished (plus an optional pause).
//!
//! Goose schedules the users; every request is timed and classified here
//! into a shared [`Recorder`] (µs resolution, replica and backend headers),
//! so goose's own metrics are switched off. Because each user waits for its
//! answer, a slow server also slows the load (coordinated omission): that is
//! what a burst or a steady client population looks like, but latency
//! figures under saturation come from [`crate::open_model`] instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::prelude::*;

use crate::record::{replica_and_backend, Outcome, Recorder, API_KEY_HEADER};
use crate::LoadError;

/// When a goose run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Each user sends this many requests, then stops.
    Iterations(usize),
    /// The run lasts this many whole seconds (goose's resolution).
    Seconds(u64),
}

/// The API keys a run's users send: user `i` is client `i % count`, key
/// `"{prefix}-{client}"`. A fresh prefix gives fresh buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKeys {
    /// Common prefix (e.g. store, scenario and repetition).
    pub prefix: String,
    /// Number of distinct clients (at least 1).
    pub count: u32,
}

impl ClientKeys {
    /// The API key of client `i`.
    pub fn key(&self, i: u32) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// The client index of goose user `user_index`.
    pub fn client_of(&self, user_index: usize) -> u32 {
        let n = self.count.max(1) as usize;
        (user_index % n) as u32
    }
}

/// A closed-model run.
#[derive(Debug, Clone)]
pub struct GoosePlan {
    /// Base URL of the system under test (nginx), e.g. `http://127.0.0.1:8080`.
    pub host: String,
    /// Request path, e.g. `/burst/item`.
    pub path: String,
    /// Concurrent users.
    pub users: usize,
    /// Users started per second (`users` or more releases them at once).
    pub hatch_rate: usize,
    /// When the run ends.
    pub stop: Stop,
    /// Pause between one user's requests (`None`: none).
    pub pause: Option<Duration>,
    /// Which bucket identity each user sends.
    pub clients: ClientKeys,
}

impl GoosePlan {
    /// The goose command line this plan maps to (goose parses it itself, so
    /// the process's own arguments are never read by goose).
    pub fn goose_args(&self) -> Vec<String> {
        let mut args = vec![
            "--host".to_owned(),
            self.host.clone(),
            "--users".to_owned(),
            self.users.to_string(),
            "--increase-rate".to_owned(),
            self.hatch_rate.max(1).to_string(),
        ];
        match self.stop {
            Stop::Iterations(n) => args.extend(["--iterations".to_owned(), n.to_string()]),
            Stop::Seconds(s) => args.extend(["--run-time".to_owned(), format!("{s}s")]),
        }
        args.extend(
            [
                "--no-telnet",
                "--no-metrics",
                "--no-print-metrics",
                "--no-error-summary",
                "--no-gzip",
                "--quiet",
                "--timeout",
                "10",
            ]
            .map(str::to_owned),
        );
        args
    }
}

/// Runs `plan` to completion, recording every request into `recorder`.
pub async fn run(plan: &GoosePlan, recorder: Arc<Recorder>) -> Result<(), LoadError> {
    let config = GooseConfiguration::parse_args_default(&plan.goose_args())
        .map_err(|e| LoadError::Goose(e.to_string()))?;
    let path: Arc<str> = Arc::from(plan.path.as_str());
    let keys = Arc::new(plan.clients.clone());
    let transaction: TransactionFunction = Arc::new(move |user: &mut GooseUser| {
        let (recorder, keys, path) = (recorder.clone(), keys.clone(), path.clone());
        Box::pin(async move {
            let client = keys.client_of(user.weighted_users_index);
            let builder = user
                .get_request_builder(&GooseMethod::Get, &path)?
                .header(API_KEY_HEADER, keys.key(client));
            let request = GooseRequest::builder()
                .path(&*path)
                .set_request_builder(builder)
                .build();
            let due = Instant::now();
            let response = user.request(request).await?.response;
            match response {
                Ok(resp) => {
                    let (replica, backend) = replica_and_backend(resp.headers());
                    let mut outcome = Outcome::from_status(resp.status().as_u16());
                    // Read the body so the connection is reused and the
                    // latency covers the whole response.
                    if resp.bytes().await.is_err() {
                        outcome = Outcome::Error;
                    }
                    recorder.record(due, outcome, client, replica.as_deref(), backend.as_deref());
                }
                Err(_) => recorder.record(due, Outcome::Error, client, None, None),
            }
            Ok(())
        })
    });
    let mut scenario = scenario!("rateguard").register_transaction(Transaction::new(transaction));
    if let Some(p) = plan.pause {
        scenario = scenario
            .set_wait_time(p, p)
            .map_err(|e| LoadError::Goose(e.to_string()))?;
    }
    GooseAttack::initialize_with_config(config)
        .map_err(|e| LoadError::Goose(e.to_string()))?
        .register_scenario(scenario)
        .execute()
        .await
        .map_err(|e| LoadError::Goose(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_wrap_around_users() {
        let keys = ClientKeys {
            prefix: "p".into(),
            count: 3,
        };
        assert_eq!(
            (0..5).map(|u| keys.client_of(u)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1]
        );
        assert_eq!(keys.key(2), "p-2");
    }

    #[test]
    fn goose_accepts_the_generated_arguments() {
        let plan = GoosePlan {
            host: "http://127.0.0.1:1".into(),
            path: "/x".into(),
            users: 4,
            hatch_rate: 100,
            stop: Stop::Seconds(2),
            pause: None,
            clients: ClientKeys {
                prefix: "k".into(),
                count: 1,
            },
        };
        let c = GooseConfiguration::parse_args_default(&plan.goose_args()).unwrap();
        assert_eq!(c.users, Some(4));
        assert!(c.no_telnet && c.no_metrics);
    }
}
