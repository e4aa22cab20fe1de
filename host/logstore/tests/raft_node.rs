//! The store wired into a real (single-node) `openraft::Raft`: initialize, write, shut down,
//! reopen the same directory, and check that openraft recovers from it.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{MemStateMachine, Request, Store, TypeConfig};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, Raft, ServerState};

/// A single-node cluster never sends RPCs; every call is answered "unreachable".
struct NoNetwork;

fn unreachable<E: std::error::Error>() -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(
        "no network in this test",
    )))
}

impl RaftNetwork<TypeConfig> for NoNetwork {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable())
    }
}

impl RaftNetworkFactory<TypeConfig> for NoNetwork {
    type Network = NoNetwork;

    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Self::Network {
        NoNetwork
    }
}

async fn start(dir: &std::path::Path, sm: MemStateMachine) -> Raft<TypeConfig> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        ..Default::default()
    }
    .validate()
    .unwrap();
    let store = Store::open(dir).unwrap();
    Raft::new(1, Arc::new(config), NoNetwork, store, sm)
        .await
        .unwrap()
}

fn req(i: u64) -> Request {
    Request {
        key: format!("k{i}"),
        value: format!("v{i}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_raft_recovers_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let last_index;
    {
        let raft = start(dir.path(), MemStateMachine::default()).await;
        raft.initialize(BTreeMap::from([(1, BasicNode::new("127.0.0.1:1"))]))
            .await
            .unwrap();
        raft.wait(Some(Duration::from_secs(5)))
            .state(ServerState::Leader, "leader")
            .await
            .unwrap();
        let mut last = 0;
        for i in 0..50 {
            let resp = raft.client_write(req(i)).await.unwrap();
            last = resp.log_id.index;
        }
        last_index = last;
        raft.shutdown().await.unwrap();
    }

    // Same directory: the store must have been released by the shut-down Raft. The in-memory
    // state machine is fresh, so openraft re-applies the log up to the persisted `committed`.
    let sm = MemStateMachine::default();
    let raft = start(dir.path(), sm.clone()).await;
    raft.wait(Some(Duration::from_secs(5)))
        .applied_index_at_least(Some(last_index), "re-applied")
        .await
        .unwrap();
    raft.wait(Some(Duration::from_secs(5)))
        .state(ServerState::Leader, "leader again")
        .await
        .unwrap();
    let resp = raft.client_write(req(1)).await.unwrap();
    assert!(resp.log_id.index > last_index);
    assert_eq!(resp.data.previous.as_deref(), Some("v1"));
    raft.shutdown().await.unwrap();
}
