//! The window guarantee: for every `[a, a + w]`, the tokens admitted are at
//! most `C + ⌊w/T⌋`.

use crate::bucket;
use crate::Quota;

/// Checks every window at once by replaying the admissions (µs, cost) in
/// time order through the reference GCRA: it admits them all iff no window
/// holds more than `C + ⌊w/T⌋` tokens (GCRA's `tat` is the max over earlier
/// admissions `i` of `t_i + T·Σ cost`, so its check at `j` is exactly the
/// window `[t_i, t_j]` for every `i`). `Err` carries the worst window.
pub(crate) fn check(quota: &Quota, admissions: &mut [(u64, u32)]) -> Result<(), String> {
    admissions.sort_unstable();
    let mut tat = 0;
    for &(at, cost) in admissions.iter() {
        let out = bucket::acquire(tat, at, quota, cost);
        if !out.decision.allowed {
            let (excess, from, to) = worst_window(quota, admissions);
            return Err(format!(
                "{excess} token(s) over C + ⌊w/T⌋ in [{from}, {to}] µs ({quota:?})"
            ));
        }
        tat = out.tat;
    }
    Ok(())
}

/// The window with the largest `tokens − C − ⌊w/T⌋` over all pairs of
/// admission times (sorted input), by brute force: (excess, from, to).
pub(crate) fn worst_window(quota: &Quota, sorted: &[(u64, u32)]) -> (i64, u64, u64) {
    let mut worst = (i64::MIN, 0, 0);
    for (i, &(from, _)) in sorted.iter().enumerate() {
        let mut tokens = 0i64;
        // Admissions at the same instant as `from` but sorted before it
        // belong to the window too.
        tokens += sorted[..i]
            .iter()
            .filter(|(t, _)| *t == from)
            .map(|&(_, c)| i64::from(c))
            .sum::<i64>();
        for &(to, cost) in &sorted[i..] {
            tokens += i64::from(cost);
            let allowance =
                i64::from(quota.capacity()) + ((to - from) / quota.interval_us()) as i64;
            if tokens - allowance > worst.0 {
                worst = (tokens - allowance, from, to);
            }
        }
    }
    worst
}
