//! The fence a leader raises while it hands its leadership over: it sends no Raft messages (so the
//! voters' leader lease runs out and one of them can be elected), refuses new writes and read indexes,
//! and releases the requests that were waiting on it with an error. A stalled disk raises it until the
//! disk answers again (`disk_watchdog`); a leadership transfer raises it until the target leads
//! (`step_down`).

use tokio::sync::watch;

/// Why the fence is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceReason {
    /// A durable sync has been outstanding longer than `disk_watchdog::DISK_STALL_BOUND`.
    DiskStall,
    /// `operator raft transfer-leader`: the leader is waiting for its chosen successor to be elected.
    Transfer,
}

impl FenceReason {
    /// What a request released by the fence is told.
    pub fn message(self) -> &'static str {
        match self {
            FenceReason::DiskStall => "the leader stepped down: its disk stopped completing fsyncs",
            FenceReason::Transfer => "the leader is transferring leadership",
        }
    }
}

#[derive(Debug)]
pub struct LeaderFence {
    raised: watch::Sender<Option<FenceReason>>,
}

impl Default for LeaderFence {
    fn default() -> LeaderFence {
        LeaderFence { raised: watch::Sender::new(None) }
    }
}

impl LeaderFence {
    pub fn reason(&self) -> Option<FenceReason> {
        *self.raised.borrow()
    }

    pub fn is_raised(&self) -> bool {
        self.reason().is_some()
    }

    /// Raises the fence (a stall replaces a transfer: the transfer then ends without lowering it).
    pub fn raise(&self, reason: FenceReason) {
        self.raised.send_replace(Some(reason));
    }

    /// Lowers the fence if it is up for `reason`; true if it was.
    pub fn lower(&self, reason: FenceReason) -> bool {
        self.raised.send_if_modified(|raised| match *raised == Some(reason) {
            true => {
                *raised = None;
                true
            }
            false => false,
        })
    }

    /// Resolves when the fence is (or already was) raised, with the reason.
    pub async fn raised(&self) -> FenceReason {
        let mut raised = self.raised.subscribe();
        let reason = match raised.wait_for(|raised| raised.is_some()).await {
            Ok(reason) => *reason,
            // The sender lives in the fence itself, so it cannot be gone while `self` is borrowed.
            Err(_) => unreachable!("the fence's sender outlives its waiters"),
        };
        reason.expect("waited for a raised fence")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_end_does_not_lower_a_fence_raised_for_a_stall() {
        let fence = LeaderFence::default();
        fence.raise(FenceReason::Transfer);
        fence.raise(FenceReason::DiskStall);
        assert!(!fence.lower(FenceReason::Transfer));
        assert_eq!(fence.reason(), Some(FenceReason::DiskStall));
        assert!(fence.lower(FenceReason::DiskStall));
        assert!(!fence.is_raised());
    }

    #[tokio::test]
    async fn waiters_are_released_when_the_fence_rises() {
        let fence = std::sync::Arc::new(LeaderFence::default());
        let waiter = tokio::spawn({
            let fence = fence.clone();
            async move { fence.raised().await }
        });
        tokio::task::yield_now().await;
        fence.raise(FenceReason::DiskStall);
        assert_eq!(waiter.await.unwrap(), FenceReason::DiskStall);
    }
}
