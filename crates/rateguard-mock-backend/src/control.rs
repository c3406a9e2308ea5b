//! The control endpoints (`/_mock/stats`, `/_mock/wait`, `/_mock/release`).

use http::{Response, StatusCode};
use serde_json::Value;

use super::{json, number, Backend, MockBody, Stats, WAIT_LIMIT};

impl Backend {
    /// Answers `/_mock/<what>?<query>`.
    pub(super) async fn control(&self, what: &str, query: &str) -> Response<MockBody> {
        let params = || query.split('&').filter_map(|kv| kv.split_once('='));
        match what {
            "stats" => json(StatusCode::OK, &stats_json(self.stats())),
            "release" => match params().find(|(k, _)| *k == "hold") {
                Some((_, id)) => {
                    self.release(id);
                    json(StatusCode::OK, &serde_json::json!({ "released": id }))
                }
                None => json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "error": "release needs hold=ID" }),
                ),
            },
            "wait" => {
                let mut least = Stats::default();
                for (key, value) in params() {
                    let field = match key {
                        "received" => &mut least.received,
                        "in_flight" => &mut least.in_flight,
                        "held" => &mut least.held,
                        "body_bytes" => &mut least.body_bytes,
                        _ => {
                            return json(
                                StatusCode::BAD_REQUEST,
                                &serde_json::json!({ "error": format!("unknown counter {key}") }),
                            )
                        }
                    };
                    let Some(n) = number(value) else {
                        return json(
                            StatusCode::BAD_REQUEST,
                            &serde_json::json!({ "error": format!("bad count {key}={value}") }),
                        );
                    };
                    *field = n;
                }
                let reached = |s: &Stats| {
                    s.received >= least.received
                        && s.in_flight >= least.in_flight
                        && s.held >= least.held
                        && s.body_bytes >= least.body_bytes
                };
                match tokio::time::timeout(WAIT_LIMIT, self.wait_until(reached)).await {
                    Ok(stats) => json(StatusCode::OK, &stats_json(stats)),
                    Err(_) => json(StatusCode::GATEWAY_TIMEOUT, &stats_json(self.stats())),
                }
            }
            _ => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": "try /_mock/stats, /_mock/wait, /_mock/release" }),
            ),
        }
    }
}

fn stats_json(stats: Stats) -> Value {
    serde_json::to_value(stats).unwrap_or_default()
}
