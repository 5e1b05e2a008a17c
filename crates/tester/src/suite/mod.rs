//! The classic suite, one async function per test. Each builds its own cluster, panics
//! with a readable message on failure, and returns the test's [`Summary`](crate::Summary).

pub mod agreement;
pub mod election;
pub mod membership;
pub mod persistence;
pub mod reads;
pub mod snapshot;
pub mod stability;

use crate::runner::Scenario;

/// A named scenario, as the suite binary lists them.
pub struct Test {
    /// The test's name, as in the classic output.
    pub name: &'static str,
    /// The part of the suite it belongs to (`4A`, `4B`, `snap`).
    pub part: &'static str,
    /// The scenario.
    pub run: Scenario,
}

/// Every test of the suite, in the classic order.
pub fn all() -> Vec<Test> {
    let mut tests = election::tests();
    tests.extend(agreement::tests());
    tests.extend(persistence::tests());
    tests.extend(snapshot::tests());
    tests.extend(stability::tests());
    tests.extend(reads::tests());
    tests.extend(membership::tests());
    tests
}
