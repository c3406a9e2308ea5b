//! The lab's vocabulary, on the measurement side: what `summary.json`, the
//! lab's flags and the report name, and no product crate needs.
//!
//! - [`ScenarioId`]: the lab's scenarios, with each one's path prefix and
//!   the backend that answers it ([`BackendKind`]);
//! - [`Frontend`]: what limits the requests (the gateways, `rateguard rls`,
//!   or a reference);
//! - [`KeyMix`]: how the load scenarios spread requests over API keys;
//! - [`Role`]: the process roles whose CPU the lab charges per request.
//!
//! Each is a [`rateguard_contract::vocabulary!`] enum (ids, `Display`,
//! `FromStr`, serde from one list); what a value means beyond its id is a
//! plain `match`, so a new value without it does not compile.
//!
//! ```
//! use rateguard_lab_model::{BackendKind, KeyMix, ScenarioId};
//!
//! let s: ScenarioId = "store-outage".parse().unwrap();
//! assert_eq!(s.path_prefix(), "/outage");
//! assert_eq!(ScenarioId::Capacity.backend(), BackendKind::Return200);
//! assert_eq!(KeyMix::Zipf.key_count(), 10_000);
//! ```

mod frontend;
mod key_mix;
mod role;
mod scenario;

pub use frontend::Frontend;
pub use key_mix::KeyMix;
pub use role::Role;
pub use scenario::{BackendKind, ScenarioId};

#[cfg(test)]
mod tests;
