//! The node's gossip keyrings: the LAN pool's (`serf/local.keyring`) and, on servers, the WAN pool's
//! (`serf/remote.keyring`), loaded from the data dir or created from `encrypt`, changed by keyring
//! operations and written back so a restart keeps rotated keys. Every gossip datagram and LAN TCP frame
//! goes through `wrap`/`unwrap` here, with nonces from the node's seeded rng; refused packets are logged
//! at most once per `REFUSAL_LOG_INTERVAL` per pool, naming the sender and how many were dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use conclave_core::keyring::{self, GossipKey, Keyring, Refused, NONCE_BYTES};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::config::tls::EncryptSettings;
use crate::env::Store;

/// At most one log line per pool this often about refused gossip packets.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Which pool's keyring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum KeyPool {
    Lan,
    Wan,
}

impl KeyPool {
    pub fn file(self) -> &'static str {
        match self {
            KeyPool::Lan => "serf/local.keyring",
            KeyPool::Wan => "serf/remote.keyring",
        }
    }

    fn index(self) -> usize {
        match self {
            KeyPool::Lan => 0,
            KeyPool::Wan => 1,
        }
    }
}

/// What travels in an envelope; the associated data of the seal, so a packet of one kind cannot be
/// replayed as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Datagram,
    Stream,
}

impl Channel {
    fn context(self, pool: KeyPool) -> &'static [u8] {
        match (pool, self) {
            (KeyPool::Lan, Channel::Datagram) => b"conclave/lan/udp",
            (KeyPool::Lan, Channel::Stream) => b"conclave/lan/tcp",
            (KeyPool::Wan, Channel::Datagram) => b"conclave/wan/udp",
            (KeyPool::Wan, Channel::Stream) => b"conclave/wan/tcp",
        }
    }
}

/// A keyring operation, as `/v1/operator/keyring` and `conclave keyring` name them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyringOp {
    List,
    Install(String),
    Use(String),
    Remove(String),
}

/// One member's answer to a keyring operation: its keys after it (base64) and its primary key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyringAnswer {
    pub keys: Vec<String>,
    pub primary: String,
}

#[derive(Default)]
struct RefusalLog {
    last_logged: Option<tokio::time::Instant>,
    suppressed: u64,
}

pub struct GossipKeys {
    rings: [RwLock<Option<Keyring>>; 2],
    verify_incoming: bool,
    verify_outgoing: bool,
    /// Where the keyrings are kept (None: `disable_keyring_file`).
    store: Option<Arc<dyn Store>>,
    rng: Mutex<ChaCha20Rng>,
    refusals: [Mutex<RefusalLog>; 2],
}

impl GossipKeys {
    /// Loads the keyrings from the data dir, or creates them from `encrypt` (writing the files). A
    /// keyring file wins over `encrypt`, as in Consul; an `encrypt` key missing from the file is added.
    pub fn load(
        settings: &EncryptSettings,
        store: Arc<dyn Store>,
        rng_seed: u64,
        server: bool,
    ) -> Result<GossipKeys, String> {
        let initial = settings
            .key
            .as_deref()
            .map(GossipKey::from_base64)
            .transpose()
            .map_err(|e| format!("invalid encrypt key: {e}"))?;
        let persist = (!settings.disable_keyring_file).then_some(store);
        let mut rings = [None, None];
        let pools: &[KeyPool] = if server { &[KeyPool::Lan, KeyPool::Wan] } else { &[KeyPool::Lan] };
        for &pool in pools {
            let from_file = match &persist {
                Some(store) => store
                    .read_file(pool.file())
                    .map_err(|e| format!("cannot read {}: {e}", pool.file()))?
                    .map(|bytes| Keyring::from_file_bytes(&bytes).map_err(|e| format!("{}: {e}", pool.file())))
                    .transpose()?,
                None => None,
            };
            let ring = match (from_file, &initial) {
                // Consul's rule: the file holds the rotated keys; `encrypt` only seeds a new keyring.
                (Some(ring), Some(key)) => {
                    if !ring.contains(key) {
                        tracing::warn!(
                            file = pool.file(),
                            "keyring file exists but encrypt is given: using the keyring file, which does not hold the encrypt key"
                        );
                    }
                    Some(ring)
                }
                (Some(ring), None) => Some(ring),
                (None, Some(key)) => Some(Keyring::new(key.clone())),
                (None, None) => None,
            };
            if let (Some(ring), Some(store)) = (&ring, &persist) {
                store
                    .write_file(pool.file(), &ring.to_file_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", pool.file()))?;
            }
            rings[pool.index()] = ring;
        }
        let [lan, wan] = rings;
        Ok(GossipKeys {
            rings: [RwLock::new(lan), RwLock::new(wan)],
            verify_incoming: settings.verify_incoming,
            verify_outgoing: settings.verify_outgoing,
            store: persist,
            rng: Mutex::new(ChaCha20Rng::seed_from_u64(rng_seed ^ 0x006b_6579_7269_6e67)), // "keyring"
            refusals: Default::default(),
        })
    }

    /// No gossip encryption (the simulator's default, and tests').
    pub fn disabled() -> GossipKeys {
        GossipKeys {
            rings: Default::default(),
            verify_incoming: false,
            verify_outgoing: false,
            store: None,
            rng: Mutex::new(ChaCha20Rng::seed_from_u64(0)),
            refusals: Default::default(),
        }
    }

    pub fn enabled(&self, pool: KeyPool) -> bool {
        self.rings[pool.index()].read().expect("keyring lock").is_some()
    }

    fn nonce(&self) -> [u8; NONCE_BYTES] {
        let mut nonce = [0u8; NONCE_BYTES];
        self.rng.lock().expect("keyring rng lock").fill_bytes(&mut nonce);
        nonce
    }

    /// Wraps an outgoing payload of `pool`.
    pub fn wrap(&self, pool: KeyPool, channel: Channel, payload: &[u8]) -> Vec<u8> {
        let ring = self.rings[pool.index()].read().expect("keyring lock");
        let nonce = if ring.is_some() && self.verify_outgoing { self.nonce() } else { [0; NONCE_BYTES] };
        keyring::wrap(ring.as_ref(), self.verify_outgoing, payload, channel.context(pool), nonce)
    }

    /// Unwraps an incoming packet of `pool`; a refusal is logged (rate-limited) naming `from`.
    pub fn unwrap(&self, pool: KeyPool, channel: Channel, packet: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        let ring = self.rings[pool.index()].read().expect("keyring lock");
        let require = ring.is_some() && self.verify_incoming;
        match keyring::unwrap(ring.as_ref(), require, packet, channel.context(pool)) {
            Ok(payload) => Some(payload),
            Err(refused) => {
                self.log_refusal(pool, from, refused);
                None
            }
        }
    }

    fn log_refusal(&self, pool: KeyPool, from: SocketAddr, refused: Refused) {
        let mut log = self.refusals[pool.index()].lock().expect("refusal log lock");
        let now = tokio::time::Instant::now();
        if log.last_logged.is_some_and(|at| now < at + REFUSAL_LOG_INTERVAL) {
            log.suppressed += 1;
            return;
        }
        tracing::warn!(
            target: "conclave::gossip",
            pool = ?pool,
            sender = %from,
            reason = %refused,
            dropped_since_last_line = log.suppressed,
            "dropped a gossip packet"
        );
        log.last_logged = Some(now);
        log.suppressed = 0;
    }

    /// Applies a keyring operation to this node's keyring of `pool`, writes the file, and answers the
    /// keys it holds after it.
    pub fn apply(&self, pool: KeyPool, op: &KeyringOp) -> Result<KeyringAnswer, String> {
        let mut guard = self.rings[pool.index()].write().expect("keyring lock");
        let Some(ring) = guard.as_mut() else {
            return Err("Gossip encryption is not enabled on this agent".into());
        };
        let parse = |text: &str| GossipKey::from_base64(text).map_err(|e| e.to_string());
        let mut changed = ring.clone();
        match op {
            KeyringOp::List => {}
            KeyringOp::Install(key) => changed.install(parse(key)?).map_err(|e| e.to_string())?,
            KeyringOp::Use(key) => changed.use_key(&parse(key)?).map_err(|e| e.to_string())?,
            KeyringOp::Remove(key) => changed.remove(&parse(key)?).map_err(|e| e.to_string())?,
        }
        if changed != *ring {
            if let Some(store) = &self.store {
                store
                    .write_file(pool.file(), &changed.to_file_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", pool.file()))?;
            }
            *ring = changed;
        }
        Ok(KeyringAnswer {
            keys: ring.keys().iter().map(GossipKey::to_base64).collect(),
            primary: ring.primary().to_base64(),
        })
    }
}
