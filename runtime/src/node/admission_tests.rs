//! Every kind of request, sent without TLS or with the wrong certificate, against a server that verifies.

use conclave_core::state::Command;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::Vote;

use super::{admission, Port};
use crate::config::tls::TlsInterface;
use crate::raft::messages::{Request, ServerInfo, SignRequest};
use crate::security::conn::PeerAuth;
use crate::security::keyring::{KeyPool, KeyringOp};
use crate::security::tls::RpcTls;

fn verifying() -> RpcTls {
    let interface = TlsInterface { verify_incoming: true, verify_server_hostname: true, ..Default::default() };
    RpcTls::new(&interface, true, "server.dc1.consul".to_string()).unwrap()
}

fn hello(server: bool) -> Request {
    Request::Hello(ServerInfo {
        raft_id: 7,
        node_name: "intruder".to_string(),
        rpc_addr: "127.0.0.9:8300".to_string(),
        datacenter: "dc1".to_string(),
        bootstrap_expect: 3,
        server,
    })
}

fn sign() -> Request {
    Request::SignClientCertificate(SignRequest {
        csr_pem: String::new(),
        node: "c1".to_string(),
        token: String::new(),
        dns_sans: Vec::new(),
        ip_sans: Vec::new(),
    })
}

/// One request of every kind the RPC port serves.
fn every_request() -> Vec<Request> {
    let vote = Vote::new(9, 7);
    vec![
        Request::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: None,
            entries: Vec::new(),
            leader_commit: None,
        }),
        Request::Vote(VoteRequest::new(vote, None)),
        Request::InstallSnapshot(InstallSnapshotRequest {
            vote,
            meta: Default::default(),
            offset: 0,
            data: Vec::new(),
            done: true,
        }),
        Request::Forward(Command::Noop, None),
        Request::ResolveToken { secret_id: "s".to_string() },
        Request::ReadIndex,
        hello(true),
        hello(false),
        Request::RenewSession { id: "x".to_string() },
        Request::Http {
            method: "PUT".into(),
            path_and_query: "/v1/kv/x".into(),
            body: Vec::new(),
            token: String::new(),
        },
        Request::Keyring { pool: KeyPool::Wan, op: KeyringOp::Install("k".into()) },
        sign(),
    ]
}

#[test]
fn plaintext_peer_under_verify_incoming_can_send_nothing_on_the_rpc_port() {
    let tls = verifying();
    for request in every_request() {
        let refused = admission(&tls, Port::Rpc, PeerAuth::default(), false, &request);
        assert!(refused.is_err(), "served without TLS: {request:?}");
    }
}

#[test]
fn tls_peer_without_a_certificate_may_only_ask_for_one() {
    let tls = verifying();
    let unverified = PeerAuth { tls: true, verified: false, server: false };
    for request in every_request() {
        let admitted = admission(&tls, Port::Rpc, unverified, false, &request).is_ok();
        assert_eq!(admitted, matches!(request, Request::SignClientCertificate(_)), "{request:?}");
    }
}

#[test]
fn client_certificate_cannot_send_raft_server_greetings_or_wan_keyring_operations() {
    let tls = verifying();
    let client = PeerAuth { tls: true, verified: true, server: false };
    for request in every_request() {
        let server_only = matches!(
            &request,
            Request::AppendEntries(_) | Request::Vote(_) | Request::InstallSnapshot(_) | Request::Keyring { .. }
        ) || matches!(&request, Request::Hello(info) if info.server);
        let admitted = admission(&tls, Port::Rpc, client, false, &request).is_ok();
        assert_eq!(admitted, !server_only, "{request:?}");
    }
    let server = PeerAuth { tls: true, verified: true, server: true };
    assert!(every_request().iter().all(|r| admission(&tls, Port::Rpc, server, false, r).is_ok()));
}

#[test]
fn lan_port_serves_greetings_and_sealed_lan_keyring_operations_only() {
    let tls = verifying();
    let lan_keyring = Request::Keyring { pool: KeyPool::Lan, op: KeyringOp::List };
    assert!(admission(&tls, Port::Lan, PeerAuth::default(), true, &lan_keyring).is_ok());
    assert!(admission(&tls, Port::Lan, PeerAuth::default(), false, &lan_keyring).is_err());
    assert!(admission(&tls, Port::Lan, PeerAuth::default(), false, &hello(true)).is_ok());
    for request in every_request().into_iter().filter(|r| !matches!(r, Request::Hello(_))) {
        assert!(admission(&tls, Port::Lan, PeerAuth::default(), true, &request).is_err(), "{request:?}");
    }
}
