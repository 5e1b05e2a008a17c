//! The simulated network's topology: which directed links are up, and FIFO order per link.

use crate::config::Micros;
use crate::event::Partition;

/// Directed links between `n` nodes (indices `0..n`). A message is delivered only if
/// its link is up when its delivery time comes. Each link is FIFO unless a fault
/// reorders a message.
#[derive(Clone, Debug)]
pub struct Network {
    n: usize,
    up: Vec<bool>,
    fifo: Vec<Micros>,
}

impl Network {
    /// A fully connected network of `n` nodes.
    pub fn new(n: usize) -> Self {
        Network {
            n,
            up: vec![true; n * n],
            fifo: vec![0; n * n],
        }
    }

    /// True when `from` can send to `to`.
    #[inline]
    pub fn link_up(&self, from: usize, to: usize) -> bool {
        self.up[from * self.n + to]
    }

    /// True when every link is up.
    pub fn is_healed(&self) -> bool {
        self.up.iter().all(|u| *u)
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.up.iter_mut().for_each(|u| *u = true);
    }

    /// The delivery time of a FIFO message sent now that would arrive at `at` on its own:
    /// never before the previous message on the same link.
    pub fn fifo_time(&mut self, from: usize, to: usize, at: Micros) -> Micros {
        let slot = &mut self.fifo[from * self.n + to];
        let t = at.max(*slot);
        *slot = t;
        t
    }

    fn cut(&mut self, from: usize, to: usize) {
        if from != to {
            self.up[from * self.n + to] = false;
        }
    }

    /// Replaces the current layout by `p` (node ids are 1-based in `p`).
    pub fn apply(&mut self, p: &Partition) {
        self.heal();
        let n = self.n;
        let inside = |mask: u64, i: usize| mask & (1u64 << i) != 0;
        match *p {
            Partition::Split { side } => {
                for a in 0..n {
                    for b in 0..n {
                        if inside(side, a) != inside(side, b) {
                            self.cut(a, b);
                        }
                    }
                }
            }
            Partition::Isolate { node } => {
                let x = (node - 1) as usize;
                for o in 0..n {
                    self.cut(x, o);
                    self.cut(o, x);
                }
            }
            Partition::Bridge { a, bridge } => {
                let x = (bridge - 1) as usize;
                for i in 0..n {
                    for j in 0..n {
                        if i != x && j != x && inside(a, i) != inside(a, j) {
                            self.cut(i, j);
                        }
                    }
                }
            }
            Partition::OneWay { node, deaf } => {
                let x = (node - 1) as usize;
                for o in 0..n {
                    if deaf {
                        self.cut(o, x);
                    } else {
                        self.cut(x, o);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_sees_both_halves() {
        let mut net = Network::new(5);
        // {n1,n2} vs {n4,n5}, n3 bridges.
        net.apply(&Partition::Bridge {
            a: 0b00011,
            bridge: 3,
        });
        assert!(!net.link_up(0, 3));
        assert!(!net.link_up(4, 1));
        assert!(net.link_up(2, 0) && net.link_up(0, 2));
        assert!(net.link_up(2, 4) && net.link_up(4, 2));
        assert!(net.link_up(0, 1));
    }

    #[test]
    fn one_way() {
        let mut net = Network::new(3);
        net.apply(&Partition::OneWay {
            node: 1,
            deaf: true,
        });
        assert!(net.link_up(0, 1));
        assert!(!net.link_up(1, 0));
        net.heal();
        assert!(net.is_healed());
    }
}
