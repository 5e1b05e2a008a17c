//! The events a step can deliver, the cluster faults, and the time-ordered queue.

use crate::config::Micros;
use raft_core::{Envelope, NodeId};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;

/// One thing that happens in one step. To teach the simulator a new kind of event (a
/// snapshot, a membership change), add a variant here and a case in
/// [`Simulator::dispatch`](crate::Simulator).
#[derive(Clone, Debug)]
pub enum Event {
    /// A node's clock ticks; `incarnation` ties it to one life of the node.
    Tick {
        /// Node index (0-based).
        node: usize,
        /// Which life of the node scheduled it.
        incarnation: u32,
    },
    /// A message reaches its receiver (if the link is up and the receiver alive).
    Deliver(Envelope),
    /// A deferred `Ready` is sent and applied.
    Flush {
        /// Node index.
        node: usize,
        /// Which life of the node scheduled it.
        incarnation: u32,
    },
    /// A client proposes one or more commands.
    Propose,
    /// A client asks a node for a linearizable read.
    Read,
    /// The service snapshots its state and lets the core compact the log.
    Compact {
        /// Node index.
        node: usize,
        /// Which life of the node scheduled it.
        incarnation: u32,
    },
    /// The liveness probe: a command proposed to the node believed to lead.
    Probe {
        /// Node index.
        node: usize,
    },
    /// A membership event: a configuration change or a leadership transfer is asked of
    /// a node (its kind is drawn when it fires).
    Membership,
    /// A cluster fault fires (its kind is drawn when it fires).
    Fault,
    /// A crashed node restarts from its storage.
    Restart {
        /// Node index.
        node: usize,
        /// Which life of the node crashed.
        incarnation: u32,
    },
    /// End of the chaos phase.
    Heal,
}

/// A cluster fault, as injected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A new partition replaces the current one.
    Partition(Partition),
    /// All links are restored.
    HealNetwork,
    /// A node crashes; `lost_unsynced` tells whether its last, unsynced batch was lost.
    Crash {
        /// The node.
        node: NodeId,
        /// Whether an unsynced batch was rolled back.
        lost_unsynced: bool,
        /// Whether a written `Ready` was waiting to be sent (its messages are lost).
        unsent: bool,
    },
    /// A node restarts from its storage.
    Restart {
        /// The node.
        node: NodeId,
    },
}

/// A partition layout; node sets are bit masks over node indices (bit `i` = node `i+1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partition {
    /// `side` cannot talk to the rest, both ways.
    Split {
        /// One side.
        side: u64,
    },
    /// `node` cannot talk to anyone.
    Isolate {
        /// The isolated node.
        node: NodeId,
    },
    /// `a` and the rest (minus `bridge`) cannot talk; `bridge` talks to both.
    Bridge {
        /// One half.
        a: u64,
        /// The node in both halves.
        bridge: NodeId,
    },
    /// `node` cannot send (`deaf == false`: it is mute) or cannot receive (`deaf`).
    OneWay {
        /// The node.
        node: NodeId,
        /// True: it cannot receive; false: it cannot send.
        deaf: bool,
    },
}

fn mask_str(mask: u64) -> String {
    let ids: Vec<String> = (0..64)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| format!("n{}", i + 1))
        .collect();
    format!("{{{}}}", ids.join(","))
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(p) => match p {
                Partition::Split { side } => {
                    write!(f, "partition: {} cut off from the rest", mask_str(*side))
                }
                Partition::Isolate { node } => write!(f, "partition: n{node} isolated"),
                Partition::Bridge { a, bridge } => write!(
                    f,
                    "partition: {} vs the rest, n{bridge} bridges both",
                    mask_str(*a)
                ),
                Partition::OneWay { node, deaf: true } => {
                    write!(f, "partition: n{node} cannot receive (one-way)")
                }
                Partition::OneWay { node, deaf: false } => {
                    write!(f, "partition: n{node} cannot send (one-way)")
                }
            },
            Fault::HealNetwork => write!(f, "network healed"),
            Fault::Crash {
                node,
                lost_unsynced,
                unsent,
            } => {
                write!(f, "n{node} CRASHES")?;
                if *unsent {
                    write!(f, " between persist and send")?;
                    if *lost_unsynced {
                        write!(f, ", losing its unsynced batch")?;
                    } else {
                        write!(f, " (batch already synced)")?;
                    }
                }
                Ok(())
            }
            Fault::Restart { node } => write!(f, "n{node} restarts from storage"),
        }
    }
}

/// A heap key: when, in which order, and where the event itself is kept (events stay
/// put in a slab while the small keys move in the heap).
struct Key {
    at: Micros,
    seq: u64,
    slot: u32,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    // Reversed: the heap pops the earliest time, then the earliest scheduled.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Events ordered by virtual time; equal times pop in the order they were scheduled, so
/// the order is a function of the seed only.
#[derive(Default)]
pub struct EventQueue {
    heap: BinaryHeap<Key>,
    slots: Vec<Option<Event>>,
    free: Vec<u32>,
    seq: u64,
}

impl EventQueue {
    /// Schedules `event` at time `at`.
    pub fn push(&mut self, at: Micros, event: Event) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(Key {
            at,
            seq: self.seq,
            slot,
        });
    }

    /// Removes and returns the next event.
    pub fn pop(&mut self) -> Option<(Micros, Event)> {
        loop {
            let key = self.heap.pop()?;
            self.free.push(key.slot);
            if let Some(event) = self.slots[key.slot as usize].take() {
                return Some((key.at, event));
            }
        }
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
