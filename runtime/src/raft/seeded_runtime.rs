//! An openraft `AsyncRuntime` that is tokio in every respect except its rng, which openraft uses only for
//! randomized election timeouts. The rng is seeded from the node's Env seed so that, in simulation, a run
//! seed fixes every election (shared/DESIGN.md, "Facts established by a prototype").
//!
//! The seeded rng is thread-local first (turmoil runs every simulated host on the thread that runs the
//! simulation, so concurrent simulations in one process stay independent) with a process-wide fallback for
//! the production runtime, whose worker threads openraft's tasks move between.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use openraft::async_runtime::TokioOneShotSender;
use openraft::{AsyncRuntime, OptionalSend, TokioInstant};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

thread_local! {
    static THREAD_RNG: RefCell<Option<ChaCha8Rng>> = const { RefCell::new(None) };
}

static PROCESS_RNG: Mutex<Option<ChaCha8Rng>> = Mutex::new(None);

/// Seeds the election rng for the calling thread and, as a fallback, for the process.
pub fn seed_election_rng(seed: u64) {
    let salted = seed ^ 0x656c_6563_7469_6f6e; // "election": keep this stream apart from other uses of the seed
    THREAD_RNG.with(|rng| *rng.borrow_mut() = Some(ChaCha8Rng::seed_from_u64(salted)));
    *PROCESS_RNG.lock().expect("election rng lock") = Some(ChaCha8Rng::seed_from_u64(salted));
}

/// Handle to the seeded election rng.
pub struct ElectionRng;

impl RngCore for ElectionRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let done = THREAD_RNG.with(|rng| match rng.borrow_mut().as_mut() {
            Some(rng) => {
                rng.fill_bytes(dest);
                true
            }
            None => false,
        });
        if done {
            return;
        }
        match PROCESS_RNG.lock().expect("election rng lock").as_mut() {
            Some(rng) => rng.fill_bytes(dest),
            None => rand::thread_rng().fill_bytes(dest),
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub struct SeededRuntime;

impl AsyncRuntime for SeededRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = tokio::time::error::Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = tokio::time::Timeout<T>;
    type ThreadLocalRng = ElectionRng;
    type OneshotSender<T: OptionalSend> = TokioOneShotSender<T>;
    type OneshotReceiverError = tokio::sync::oneshot::error::RecvError;
    type OneshotReceiver<T: OptionalSend> = tokio::sync::oneshot::Receiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        tokio::task::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        tokio::time::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        tokio::time::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        tokio::time::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        ElectionRng
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (TokioOneShotSender(tx), rx)
    }
}
