//! openraft's storage conformance suite against Conclave's log store and state machine on the
//! simulator's disk, so the storage the simulator exercises is held to the same contract as fjall's.

use std::sync::Arc;

use conclave::env::Store;
use conclave::raft::log_store::LogStore;
use conclave::raft::state_machine::{SharedState, StateMachine};
use conclave::raft::{StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use sim::disk::SimDisk;

struct SimDiskBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for SimDiskBuilder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError> {
        let store: Arc<dyn Store> = Arc::new(SimDisk::new());
        let machine = StateMachine::open(store.clone(), SharedState::new(), "suite").expect("open state machine");
        Ok(((), LogStore::new(store, conclave::raft::disk_syncs::DiskSyncs::new()), machine))
    }
}

#[test]
fn sim_disk_passes_openraft_storage_suite() {
    Suite::test_all(SimDiskBuilder).expect("storage suite");
}
