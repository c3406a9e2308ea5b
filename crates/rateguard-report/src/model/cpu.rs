//! [`CpuPerRequest`]: CPU time per request by process [`Role`].

use std::collections::BTreeMap;

use rateguard_lab_model::Role;
use serde::{Deserialize, Serialize};

use super::median;

/// CPU µs per request by role (`{"gateway": 41.2, "store": 12.0, ...}`):
/// each role's user + system time over a measured window, divided by the
/// requests completed in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CpuPerRequest(pub BTreeMap<Role, f64>);

impl CpuPerRequest {
    /// `role`'s µs per request (0 when the role ran nothing).
    pub fn get(&self, role: Role) -> f64 {
        self.0.get(&role).copied().unwrap_or(0.0)
    }

    /// All roles together.
    pub fn total(&self) -> f64 {
        self.0.values().sum()
    }

    /// All roles but the load generator: what the system under test cost.
    pub fn system(&self) -> f64 {
        self.total() - self.get(Role::Loadgen)
    }

    /// The per-role median over `samples` ([`median`]); `None` when empty.
    pub fn median_of(samples: &[&CpuPerRequest]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let by_role = Role::ALL
            .into_iter()
            .filter_map(|role| {
                let v: Vec<f64> = samples.iter().map(|c| c.get(role)).collect();
                Some((role, median(&v)?))
            })
            .collect();
        Some(Self(by_role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_medians() {
        let c = |g: f64, l: f64| {
            CpuPerRequest(BTreeMap::from([(Role::Gateway, g), (Role::Loadgen, l)]))
        };
        let (a, b, d) = (c(10.0, 4.0), c(30.0, 2.0), c(20.0, 3.0));
        assert_eq!(a.total(), 14.0);
        assert_eq!(a.system(), 10.0);
        assert_eq!(a.get(Role::Store), 0.0);
        let m = CpuPerRequest::median_of(&[&a, &b, &d]).unwrap();
        assert_eq!((m.get(Role::Gateway), m.get(Role::Loadgen)), (20.0, 3.0));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"gateway":10.0,"loadgen":4.0}"#);
        assert!(CpuPerRequest::median_of(&[]).is_none());
    }
}
