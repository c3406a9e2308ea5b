//! Shutdown: the process's signals ([`shutdown_signal`]) and the
//! replica's fan-out to every task that must stop ([`Stop`]).

use tokio::sync::watch;

/// The replica's shutdown, as every task that must stop sees it.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Stops once `stop` turns true (or its sender is gone).
    pub fn new(stop: watch::Receiver<bool>) -> Self {
        Self(stop)
    }

    /// Resolves once shutdown began.
    pub async fn stopped(mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere). Poll it inside a runtime.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
