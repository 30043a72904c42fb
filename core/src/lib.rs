//! conclave-core: Conclave's deterministic state machines, free of I/O.
//!
//! Nothing in this crate reads a clock, opens a socket or a file, spawns a thread or draws OS randomness;
//! time and randomness come in as arguments, so the simulator can replay any run from its seed.
//!
//! How a driver uses it:
//! 1. Create one [`state::State`] per server: it is the Raft state machine, a composition of tables
//!    ([`catalog::CatalogTable`], [`kv::KvStore`], [`kv::Sessions`], [`acl::AclTable`]).
//! 2. Decode what users send with [`api::decode`] (Consul's JSON rules) into a table's command
//!    ([`catalog::CatalogCommand`], [`kv::KvCommand`], [`kv::SessionCommand`], a transaction's
//!    [`kv::TxnOp`]s) or a 400-style [`api::ApiError`], and wrap it in a [`state::Command`].
//! 3. Propose the command through Raft in a [`state::Proposal`]; when the entry at index `i` commits, call
//!    `State::apply_at(i, proposed_at_ms, &cmd)` on every server, in log order, and hand its
//!    [`state::Response`] back to the proposer.
//! 4. Answer reads from the state's query methods and build Consul's JSON with [`api::encode`]; for a
//!    blocking query compare `State::index_of(&WatchKey)` ([`state::WatchKey`]) with the client's index.
//! 5. Snapshot with [`codec::encode_snapshot`] and restore with [`codec::decode_snapshot`].
//! 6. Run one [`gossip::Membership`] per gossip pool (LAN, WAN): feed it datagrams and due timers, carry out
//!    the [`gossip::GossipAction`]s it returns, read the member list from it.
//! 7. With gossip encryption on, pass every outgoing datagram and LAN TCP frame through [`keyring::wrap`] and
//!    every incoming one through [`keyring::unwrap`] (with a fresh nonce per wrap); keep the
//!    [`keyring::Keyring`] in the keyring file ([`keyring::Keyring::to_file_bytes`]).
//! 8. On the leader, observe each server of the Raft configuration, judge it with
//!    [`autopilot::is_healthy`], and carry out the promotions and removals of [`autopilot::plan`].

pub mod acl;
pub mod agent;
pub mod api;
pub mod autopilot;
pub mod ca;
pub mod catalog;
pub mod codec;
pub mod dns;
pub mod gossip;
pub mod keyring;
pub mod kv;
pub mod state;
