//! Lease deadlines, kept by the leader only: expiry is a decision the leader replicates as
//! a [`crate::store::Command::LeaseExpire`], never something replicas infer from their
//! own clocks. A new leader starts every lease afresh with its full TTL (etcd's
//! conservative extension), so no lease expires early because leadership moved.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// The deadlines of the leases this node, as leader, is timing.
#[derive(Debug, Default, Clone)]
pub struct LeaseClock {
    /// `None`: a TTL too large to represent as a deadline; never expires.
    deadlines: BTreeMap<i64, Option<Instant>>,
}

impl LeaseClock {
    /// An empty clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts or renews lease `id` for `ttl` seconds from `now`.
    pub fn renew(&mut self, id: i64, ttl: i64, now: Instant) {
        let secs = u64::try_from(ttl).unwrap_or(0);
        self.deadlines
            .insert(id, now.checked_add(Duration::from_secs(secs)));
    }

    /// Forgets lease `id` (revoked, expired, or handed to an expiry proposal).
    pub fn remove(&mut self, id: i64) {
        self.deadlines.remove(&id);
    }

    /// Whether the clock times lease `id`.
    pub fn contains(&self, id: i64) -> bool {
        self.deadlines.contains_key(&id)
    }

    /// Whole seconds lease `id` has left (etcd truncates too), or `None` if unknown.
    pub fn remaining(&self, id: i64, now: Instant) -> Option<i64> {
        let deadline = self.deadlines.get(&id)?;
        Some(match deadline {
            None => i64::MAX,
            Some(d) => {
                i64::try_from(d.saturating_duration_since(now).as_secs()).unwrap_or(i64::MAX)
            }
        })
    }

    /// The leases whose deadline has passed, in ID order.
    pub fn expired(&self, now: Instant) -> Vec<i64> {
        self.deadlines
            .iter()
            .filter(|(_, d)| d.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The earliest deadline, to sleep until.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.values().flatten().min().copied()
    }

    /// On becoming leader: times every lease of the replicated state afresh, each with its
    /// full TTL from `now`.
    pub fn promote(&mut self, leases: impl IntoIterator<Item = (i64, i64)>, now: Instant) {
        self.deadlines.clear();
        for (id, ttl) in leases {
            self.renew(id, ttl, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_renewal_and_promotion() {
        let t0 = Instant::now();
        let mut c = LeaseClock::new();
        c.renew(1, 10, t0);
        c.renew(2, 5, t0);
        c.renew(3, i64::MAX, t0);
        assert_eq!(c.remaining(1, t0), Some(10));
        assert_eq!(c.remaining(1, t0 + Duration::from_millis(2500)), Some(7));
        assert_eq!(c.remaining(9, t0), None);
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert!(c.expired(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(c.expired(t0 + Duration::from_secs(5)), vec![2]);
        c.renew(2, 5, t0 + Duration::from_secs(6));
        assert_eq!(c.expired(t0 + Duration::from_secs(10)), vec![1]);
        c.remove(1);
        assert!(!c.contains(1));
        let t1 = t0 + Duration::from_secs(100);
        c.promote([(2, 5), (4, 1)], t1);
        assert!(!c.contains(3));
        assert_eq!(c.remaining(2, t1), Some(5));
        assert_eq!(c.expired(t1 + Duration::from_secs(1)), vec![4]);
    }
}
