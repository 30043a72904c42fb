//! The seeded rng that foca draws from. foca 2.0 wants a rand 0.10 `Rng`; the rest of Conclave uses
//! rand 0.8 / rand_chacha 0.3, so this adapts a ChaCha8 stream seeded by the caller. Same seed, same draws.

use std::convert::Infallible;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A ChaCha8 rng seen through rand_core 0.10's `TryRng` (and so foca's `RngExt`).
pub struct GossipRng(ChaCha8Rng);

impl GossipRng {
    pub fn seed_from_u64(seed: u64) -> GossipRng {
        GossipRng(ChaCha8Rng::seed_from_u64(seed))
    }
}

impl rand_core_foca::TryRng for GossipRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}
