//! The snapshot `pick` reads: per live tier, its candidates, the
//! strategy's state for them and the tier's share of the traffic (Envoy's
//! priority load and panic threshold), rebuilt whole whenever the backends'
//! health or membership changes.

use crate::backend::{Backend, Slot};
use crate::balancer::Inner;
use crate::builder::Settings;
use crate::priority::{health_score, priority_load};
use crate::strategy::{Candidates, Strategy};
use crate::sync::{Ordering, Shared};

/// One tier that takes traffic.
pub(crate) struct TierView<T, St> {
    pub(crate) tier: u32,
    pub(crate) eligible: Vec<Slot<T>>,
    /// The strategy's `State` for `eligible`.
    pub(crate) state: St,
    /// The tier's share of the traffic, in percent.
    pub(crate) load: u32,
    /// The tiers' loads up to and including this one: a draw `r` in
    /// `0..100` goes to the first tier with `r < load_end`.
    pub(crate) load_end: u32,
}

/// What `pick` reads, replaced whole whenever it changes.
pub(crate) struct View<T, St> {
    /// The tiers with a share of the traffic, in priority order.
    pub(crate) tiers: Vec<TierView<T, St>>,
    /// The earliest clock reading at which an ejected backend returns;
    /// `u64::MAX` when none is ejected, so `pick` reads the clock only when
    /// there is something to readmit.
    pub(crate) readmit_at: u64,
    /// The latest clock reading at which a candidate's slow start ends; 0
    /// when none is warming, so `pick` reads the clock only then.
    pub(crate) warm_until: u64,
    /// Some tier balances over unhealthy backends, or none is healthy.
    pub(crate) panicking: bool,
}

/// Builds the snapshot of `inner`'s backends at clock reading `now`.
pub(crate) fn build_view<T, S: Strategy>(
    strategy: &S,
    inner: &Inner<T>,
    settings: &Settings,
    now: u64,
) -> View<T, S::State> {
    let ready: Vec<&Shared<Backend<T>>> = inner
        .members
        .iter()
        .filter(|b| b.state().is_ready())
        .collect();
    let mut tiers: Vec<u32> = ready.iter().map(|b| b.state().tier()).collect();
    tiers.sort_unstable();
    tiers.dedup();
    let of_tier = |t: u32| ready.iter().copied().filter(move |b| b.state().tier() == t);
    let counts: Vec<(usize, usize)> = tiers
        .iter()
        .map(|&t| {
            let healthy = of_tier(t).filter(|b| b.state().is_healthy()).count();
            (healthy, of_tier(t).count())
        })
        .collect();
    let scores: Vec<u32> = counts
        .iter()
        .map(|&(h, n)| health_score(h, n, settings.overprovisioning))
        .collect();
    let total: u64 = scores.iter().map(|&s| u64::from(s)).sum::<u64>().min(100);
    let prepare = |t: u32, all: bool, load: u32, load_end: u32| {
        let eligible: Vec<Slot<T>> = of_tier(t)
            .filter(|b| all || b.state().is_healthy())
            .map(Slot::new)
            .collect();
        let state = strategy.prepare(Candidates::new(&eligible));
        TierView {
            tier: t,
            eligible,
            state,
            load,
            load_end,
        }
    };
    let mut out = Vec::new();
    let mut panicking = false;
    if total == 0 {
        // Nothing healthy: the first tier, whole, in panic mode; nothing
        // without it.
        if let Some(&t) = tiers.first() {
            panicking = true;
            if settings.panic_mode {
                out.push(prepare(t, true, 100, 100));
            }
        }
    } else {
        let mut load_end = 0;
        for ((&t, &(healthy, n)), load) in tiers.iter().zip(&counts).zip(priority_load(&scores)) {
            if load == 0 {
                continue;
            }
            load_end += load;
            // Envoy disregards the threshold while the tiers together can
            // take all the traffic.
            let panic = settings.panic_mode
                && total < 100
                && (healthy as u64) * 100 < u64::from(settings.panic_threshold) * n as u64;
            panicking |= panic;
            out.push(prepare(t, panic, load, load_end));
        }
    }
    let readmit_at = inner
        .members
        .iter()
        .map(|b| b.state().ejected_until.load(Ordering::Acquire))
        .filter(|&u| u != 0)
        .min()
        .unwrap_or(u64::MAX);
    let warm_until = match &settings.slow_start {
        Some(s) => out
            .iter()
            .flat_map(|t| t.eligible.iter())
            .map(|slot| slot.state.warm_since.load(Ordering::Acquire))
            .filter(|&since| since != 0)
            .map(|since| since.saturating_add(sysblocks_clock::saturating_nanos(s.window)))
            .filter(|&end| end > now)
            .max()
            .unwrap_or(0),
        None => 0,
    };
    View {
        tiers: out,
        readmit_at,
        warm_until,
        panicking,
    }
}
