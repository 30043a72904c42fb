//! openraft's storage conformance suite, run against Conclave's log store and state machine over both
//! production stores: the in-memory store of `-dev` and the fjall store of a data dir.

use std::sync::Arc;

use conclave::env::{FjallStore, MemStore, Store};
use conclave::raft::log_store::LogStore;
use conclave::raft::state_machine::{SharedState, StateMachine};
use conclave::raft::{StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};

struct MemBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for MemBuilder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError> {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let machine = StateMachine::open(store.clone(), SharedState::new(), "suite").expect("open state machine");
        Ok(((), LogStore::new(store, conclave::raft::disk_syncs::DiskSyncs::new()), machine))
    }
}

struct FjallBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for FjallBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(FjallStore::open(dir.path()).expect("open fjall"));
        let machine = StateMachine::open(store.clone(), SharedState::new(), "suite").expect("open state machine");
        Ok((dir, LogStore::new(store, conclave::raft::disk_syncs::DiskSyncs::new()), machine))
    }
}

#[test]
fn memory_store_passes_openraft_storage_suite() {
    Suite::test_all(MemBuilder).expect("storage suite");
}

#[test]
fn fjall_store_passes_openraft_storage_suite() {
    Suite::test_all(FjallBuilder).expect("storage suite");
}
