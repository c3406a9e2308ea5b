//! Max-min fair division of a bucket's rate by demand.

use super::SHARE_PARTS;
use crate::Quota;

/// The max-min fair level for `capacity` parts among `demands`: each
/// holder gets `min(demand, level)`; `u32::MAX` when every demand fits.
///
/// Depends only on the multiset of demands (not their order), so the Lua
/// mirror needs no agreed ordering of holders; whatever rounding leaves
/// over stays with the bucket's ordinary part.
///
/// ```
/// use rateguard_core::share::water_level;
/// assert_eq!(water_level(1000, &[100, 700, 700]), 450);
/// assert_eq!(water_level(1000, &[100, 200]), u32::MAX);
/// assert_eq!(water_level(1000, &[900, 900, 900]), 333);
/// ```
pub fn water_level(capacity: u32, demands: &[u32]) -> u32 {
    let mut sorted = demands.to_vec();
    sorted.sort_unstable();
    let mut remaining = capacity;
    for (i, &d) in sorted.iter().enumerate() {
        let share = remaining / (sorted.len() - i) as u32;
        if d > share {
            return share;
        }
        remaining -= d;
    }
    u32::MAX
}

/// A holder's demand in parts: `offered` requests seen over `period_us`,
/// as a fraction of the bucket's rate, plus `headroom_pct` percent so a
/// holder whose traffic grows is not stuck at its last figure; rounded up,
/// at most [`SHARE_PARTS`]. Count denied requests too: demand is what was
/// offered, not what was admitted.
///
/// ```
/// use rateguard_core::{share::demand_parts, Quota};
/// let q = Quota::new(100, 1000.0).unwrap(); // 1000/s
/// assert_eq!(demand_parts(50, 100_000, &q, 0), 500); // 500/s of 1000/s
/// assert_eq!(demand_parts(50, 100_000, &q, 25), 625);
/// assert_eq!(demand_parts(500, 100_000, &q, 0), 1000);
/// assert_eq!(demand_parts(0, 100_000, &q, 25), 0);
/// ```
pub fn demand_parts(offered: u64, period_us: u64, quota: &Quota, headroom_pct: u32) -> u32 {
    let num = u128::from(offered)
        * u128::from(quota.interval_us())
        * u128::from(SHARE_PARTS)
        * (100 + u128::from(headroom_pct));
    let den = u128::from(period_us.max(1)) * 100;
    u32::try_from(num.div_ceil(den))
        .unwrap_or(u32::MAX)
        .min(SHARE_PARTS)
}
