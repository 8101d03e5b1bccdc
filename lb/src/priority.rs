//! Envoy's priority load: how much of the traffic each failover tier takes
//! when tiers are partly healthy, by the overprovisioning factor.
//!
//! A tier's health score is its healthy percentage times the factor
//! (Envoy's default 1.4), capped at 100; when the scores add up to less
//! than 100 they are normalised to 100; each tier then takes its score, in
//! order, out of what the tiers before it left (rounded to the nearest
//! percent, any rounding rest going to the first tier with a score).

/// Envoy's default overprovisioning factor, in percent.
pub const DEFAULT_OVERPROVISIONING_PERCENT: u64 = 140;

/// One tier's health score from its healthy and total backend counts, with
/// the overprovisioning factor in percent (140 for 1.4).
#[must_use]
pub fn health_score(healthy: usize, total: usize, factor_percent: u64) -> u32 {
    if total == 0 {
        return 0;
    }
    let score = factor_percent.saturating_mul(healthy as u64) / total as u64;
    score.min(100) as u32
}

/// The percent of the traffic each tier takes, from the tiers' health
/// scores in priority order. The loads add up to 100; with no healthy tier
/// at all, the first tier takes everything (where panic mode applies).
#[must_use]
pub fn priority_load(scores: &[u32]) -> Vec<u32> {
    let mut loads = vec![0; scores.len()];
    if scores.is_empty() {
        return loads;
    }
    let total = scores.iter().map(|&s| u64::from(s)).sum::<u64>().min(100);
    if total == 0 {
        loads[0] = 100;
        return loads;
    }
    let mut left = 100u64;
    for (load, &score) in loads.iter_mut().zip(scores) {
        let share = (u64::from(score) * 100 + total / 2) / total;
        let take = share.min(left);
        *load = take as u32;
        left -= take;
    }
    if left > 0 {
        if let Some(i) = scores.iter().position(|&s| s > 0) {
            loads[i] += left as u32;
        }
    }
    loads
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables of Envoy's "Priority levels" page (1.4, healthy percent
    /// per tier of 100 backends each).
    #[test]
    fn envoys_priority_load_tables() {
        let load = |healthy: &[usize]| {
            let scores: Vec<u32> = healthy
                .iter()
                .map(|&h| health_score(h, 100, DEFAULT_OVERPROVISIONING_PERCENT))
                .collect();
            priority_load(&scores)
        };
        // Two tiers, P=1 fully healthy.
        assert_eq!(load(&[100, 100]), [100, 0]);
        assert_eq!(load(&[72, 100]), [100, 0]);
        assert_eq!(load(&[71, 100]), [99, 1]);
        assert_eq!(load(&[50, 100]), [70, 30]);
        assert_eq!(load(&[25, 100]), [35, 65]);
        assert_eq!(load(&[0, 100]), [0, 100]);
        // Two tiers, both degraded.
        assert_eq!(load(&[72, 72]), [100, 0]);
        assert_eq!(load(&[71, 71]), [99, 1]);
        assert_eq!(load(&[50, 50]), [70, 30]);
        assert_eq!(load(&[25, 25]), [50, 50]);
        // Three tiers.
        assert_eq!(load(&[100, 100, 100]), [100, 0, 0]);
        assert_eq!(load(&[72, 72, 100]), [100, 0, 0]);
        assert_eq!(load(&[71, 71, 100]), [99, 1, 0]);
        assert_eq!(load(&[50, 50, 100]), [70, 30, 0]);
        assert_eq!(load(&[25, 100, 100]), [35, 65, 0]);
        assert_eq!(load(&[25, 25, 100]), [35, 35, 30]);
        assert_eq!(load(&[25, 25, 20]), [36, 36, 28]);
    }

    #[test]
    fn normalised_scores_and_edges() {
        // Envoy's normalisation example: scores {20, 30} give {40, 60}.
        assert_eq!(priority_load(&[20, 30]), [40, 60]);
        assert_eq!(priority_load(&[0, 0]), [100, 0]);
        assert!(priority_load(&[]).is_empty());
        assert_eq!(priority_load(&[33, 33, 33]), [34, 33, 33]);
        assert_eq!(health_score(1, 0, 140), 0);
        assert_eq!(health_score(1, 2, u64::MAX), 100);
    }
}
