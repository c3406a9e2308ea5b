//! The store-outage scenario's figures per `on_error` mode: what was let
//! through while the store was down, against what an ideal bucket allows,
//! and how long after the restart the store decided again.

use rateguard_contract::OnError;
use serde::{Deserialize, Serialize};

use super::{Settings, Spread};

/// One repetition's outage window (requests sent between the kill and the
/// restart) and its recovery time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OutageRep {
    /// 2xx responses to requests sent while the store was down.
    pub admitted: u64,
    /// What one ideal bucket per client would have admitted of the same
    /// requests (replayed from the scenario's start).
    pub ideal: u64,
    /// `429`s while the store was down.
    pub denied: u64,
    /// Errors while the store was down (`503` under `deny`, transport errors).
    pub errors: u64,
    /// How long the store was down, ms.
    pub down_ms: u64,
    /// From the restart until the store decided again, ms (see
    /// [`Outage::enforcement_resumed_at_ms`](super::Outage)); `None` if it
    /// did not within the run.
    pub recovery_ms: Option<u64>,
}

/// The outage window over every repetition: min / median / max.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OutageWindow {
    /// 2xx while the store was down.
    pub admitted: Spread,
    /// The ideal bucket's allowance for the same requests.
    pub ideal: Spread,
    /// `429`s while the store was down.
    pub denied: Spread,
    /// Errors (`503`, transport) while the store was down.
    pub errors: Spread,
    /// `local` only: the most the replicas may admit while down, summed
    /// over the clients: `replicas × (⌊C / h⌋ + d·r / h)` per client at the
    /// median outage length `d` (`h` = `replicas_hint`).
    #[serde(default)]
    pub bound: Option<f64>,
    /// Recovery time over the repetitions that recovered, ms.
    #[serde(default)]
    pub recovery_ms: Option<Spread>,
    /// Repetitions whose store decided again within the run.
    pub recovered: u32,
    /// Repetitions in all.
    pub runs: u32,
}

impl OutageWindow {
    /// The window over `reps`; `None` when there are none.
    pub fn of(reps: &[OutageRep], bound: Option<f64>) -> Option<Self> {
        let pick = |f: fn(&OutageRep) -> u64| -> Option<Spread> {
            Spread::of(&reps.iter().map(|r| f(r) as f64).collect::<Vec<_>>())
        };
        let recovery: Vec<f64> = reps
            .iter()
            .filter_map(|r| r.recovery_ms.map(|ms| ms as f64))
            .collect();
        Some(Self {
            admitted: pick(|r| r.admitted)?,
            ideal: pick(|r| r.ideal)?,
            denied: pick(|r| r.denied)?,
            errors: pick(|r| r.errors)?,
            bound,
            recovery_ms: Spread::of(&recovery),
            recovered: u32::try_from(recovery.len()).unwrap_or(u32::MAX),
            runs: u32::try_from(reps.len()).unwrap_or(u32::MAX),
        })
    }
}

impl Settings {
    /// The `on_error` modes of the store-outage scenario (`[allow]` for a
    /// run from before modes existed).
    pub fn outage_modes(&self) -> Vec<OnError> {
        if self.on_error.is_empty() {
            vec![OnError::Allow]
        } else {
            self.on_error.clone()
        }
    }

    /// The modes the outage runs with on the `nth` store that has a store
    /// server: every mode, or with [`Settings::one_mode_per_store`] the
    /// `nth` in turn.
    pub fn outage_modes_for(&self, nth: usize) -> Vec<OnError> {
        let modes = self.outage_modes();
        if self.one_mode_per_store {
            vec![modes[nth % modes.len()]]
        } else {
            modes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_spreads_and_counts_recoveries() {
        let rep = |admitted, recovery_ms| OutageRep {
            admitted,
            ideal: 10,
            recovery_ms,
            ..OutageRep::default()
        };
        let w = OutageWindow::of(
            &[rep(30, Some(400)), rep(10, None), rep(20, Some(600))],
            None,
        )
        .unwrap();
        assert_eq!(
            (w.admitted.min, w.admitted.median, w.admitted.max),
            (10.0, 20.0, 30.0)
        );
        assert_eq!(w.recovery_ms.unwrap().median, 500.0);
        assert_eq!((w.recovered, w.runs), (2, 3));
        assert!(OutageWindow::of(&[], None).is_none());
    }

    #[test]
    fn one_mode_per_store_takes_them_in_turn() {
        let mut s = Settings::default();
        assert_eq!(s.outage_modes_for(2), [OnError::Allow]);
        s.on_error = OnError::ALL.to_vec();
        assert_eq!(s.outage_modes_for(1), OnError::ALL);
        s.one_mode_per_store = true;
        assert_eq!(s.outage_modes_for(1), [OnError::Deny]);
        assert_eq!(s.outage_modes_for(3), [OnError::Allow]);
    }
}
