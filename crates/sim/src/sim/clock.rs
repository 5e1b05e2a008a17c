//! The nodes' clocks in lease mode: each reads virtual time plus an error within the
//! configured uncertainty, and the error jumps (to anywhere within the bound, often to
//! one of its ends) at random moments, backwards as well as forwards. ReadIndex runs give
//! the cores no clock and draw nothing here.

use super::Simulator;
use rand::Rng;

/// Chance that a node's clock error changes before one of its inputs.
const JUMP: f64 = 0.02;

impl Simulator {
    /// The initial clock errors (lease mode only).
    pub(super) fn init_clocks(&mut self) {
        if self.cfg.network.lease_us == 0 {
            return;
        }
        self.clock_errors = (0..self.world.nodes.len())
            .map(|_| self.draw_clock_error())
            .collect();
    }

    fn draw_clock_error(&mut self) -> i64 {
        let u = i64::try_from(self.cfg.network.clock_uncertainty_us).unwrap_or(i64::MAX);
        if u == 0 {
            return 0;
        }
        match self.rng.gen_range(0..3) {
            0 => -u,
            1 => u,
            _ => self.rng.gen_range(-u..=u),
        }
    }

    /// Gives `node`'s core its clock reading, before one of its inputs.
    pub(super) fn set_clock(&mut self, node: usize) {
        if self.cfg.network.lease_us == 0 || self.world.nodes[node].core.is_none() {
            return;
        }
        if self.chance(JUMP) {
            self.clock_errors[node] = self.draw_clock_error();
        }
        let now = i64::try_from(self.world.now).unwrap_or(i64::MAX);
        let reading = u64::try_from(now.saturating_add(self.clock_errors[node])).unwrap_or(0);
        if let Some(core) = self.world.nodes[node].core.as_mut() {
            core.set_time(reading);
        }
    }
}
