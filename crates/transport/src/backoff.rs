//! Exponential backoff with jitter between connection attempts.

use rand::Rng;
use std::time::Duration;

/// Waits that double after each failure up to a cap; each actual wait is drawn uniformly
/// from the upper half of the current step, so peers that lost a node together do not
/// reconnect in lockstep.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            step: initial,
        }
    }

    /// Back to the first step, after a success.
    pub(crate) fn reset(&mut self) {
        self.step = self.initial;
    }

    /// The wait before the next attempt; advances the step.
    pub(crate) fn next_wait(&mut self, rng: &mut impl Rng) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rng.gen_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn waits_double_up_to_the_cap_and_stay_in_the_upper_half() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let steps = [100u64, 200, 400, 800, 1000, 1000];
        for step in steps {
            let w = b.next_wait(&mut rng);
            let step = Duration::from_millis(step);
            assert!(
                w >= step / 2 && w <= step,
                "{w:?} not in the upper half of {step:?}"
            );
        }
        b.reset();
        assert!(b.next_wait(&mut rng) <= Duration::from_millis(100));
    }
}
