//! The run's single source of randomness.

use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::rc::Rc;

/// One seeded `ChaCha8Rng`, shared by the simulator and every core it runs (cores draw
/// their election timeouts from it). Cloning shares the same generator, so the whole run
/// is a function of the seed and nothing else.
#[derive(Clone, Debug)]
pub struct SharedRng(Rc<RefCell<ChaCha8Rng>>);

impl SharedRng {
    /// The generator of run `seed`: ChaCha8 keyed by `seed`, stream 0.
    pub fn from_seed(seed: u64) -> Self {
        Self::with_stream(seed, 0)
    }

    /// ChaCha8 keyed by `seed`, on its independent stream `stream`. The simulator draws
    /// a seed's swarm settings from stream 1 and runs on stream 0, so that running the
    /// resolved settings again with the same seed replays the very same run.
    pub fn with_stream(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        SharedRng(Rc::new(RefCell::new(rng)))
    }
}

impl RngCore for SharedRng {
    fn next_u32(&mut self) -> u32 {
        self.0.borrow_mut().next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.borrow_mut().next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.borrow_mut().fill_bytes(dest)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.borrow_mut().try_fill_bytes(dest)
    }
}
