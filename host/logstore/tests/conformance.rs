//! openraft's own storage conformance suite against `LogStore` (with a scaffolding state machine).

mod common;

use common::{MemStateMachine, Store, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{AnyError, StorageError, StorageIOError};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, Store, MemStateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, Store, MemStateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir()
            .map_err(|e| StorageError::from(StorageIOError::write(AnyError::new(&e))))?;
        let store = Store::open(dir.path())
            .map_err(|e| StorageError::from(StorageIOError::write(AnyError::new(&e))))?;
        Ok((dir, store, MemStateMachine::default()))
    }
}

#[test]
fn openraft_storage_suite() {
    // Suite::test_all builds its own tokio runtime per case: do not call it from #[tokio::test].
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft storage suite failed: {e}");
    }
}
