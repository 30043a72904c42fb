//! How a connection of the node's own protocols is opened and how its frames travel. `Link::Rpc` is
//! server RPC (port 8300): a mode byte, then TLS when configured, then plain frames. `Link::Lan` is the
//! LAN port's TCP side (8301: discovery greetings, keyring operations): no TLS, but with a gossip key
//! every frame is sealed in the gossip envelope, so only key holders can talk on it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use conclave_core::codec;
use conclave_core::keyring::ENVELOPE_SEALED;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

use super::frame::{decode, read_frame_bytes, write_frame_bytes};
use crate::env::Env;
use crate::security::conn::{accept_rpc, open_rpc, Conn, PeerAuth};
use crate::security::keyring::{Channel, GossipKeys, KeyPool};
use crate::security::tls::RpcTls;

#[derive(Clone)]
pub enum Link {
    Rpc(Arc<RpcTls>),
    Lan(Arc<GossipKeys>),
}

/// A frame read from a link, and whether it arrived sealed under a gossip key.
pub struct Received<T> {
    pub message: T,
    pub sealed: bool,
}

impl Link {
    /// Dials `addr` and opens the link's protocol on it.
    pub async fn dial<E: Env>(&self, env: &E, addr: SocketAddr) -> io::Result<Conn<E::Stream>> {
        let stream = env.connect_tcp(addr).await?;
        match self {
            Link::Rpc(tls) => open_rpc(stream, tls).await,
            Link::Lan(_) => Ok(Conn::Plain(stream)),
        }
    }

    /// Opens the link's protocol on an accepted stream.
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S) -> io::Result<(Conn<S>, PeerAuth)> {
        match self {
            Link::Rpc(tls) => accept_rpc(stream, tls).await,
            Link::Lan(_) => Ok((Conn::Plain(stream), PeerAuth::default())),
        }
    }

    pub async fn send<S: AsyncWrite + Unpin, T: Serialize>(&self, conn: &mut S, message: &T) -> io::Result<()> {
        let bytes = codec::encode(message);
        match self {
            Link::Rpc(_) => write_frame_bytes(conn, &bytes).await,
            Link::Lan(keys) => write_frame_bytes(conn, &keys.wrap(KeyPool::Lan, Channel::Stream, &bytes)).await,
        }
    }

    /// Reads one message; `Ok(None)` on a clean end of stream. A LAN frame the keyring refuses ends the
    /// connection (and is logged by the keyring).
    pub async fn receive<S: AsyncRead + Unpin, T: DeserializeOwned>(
        &self,
        conn: &mut S,
        peer: SocketAddr,
    ) -> io::Result<Option<Received<T>>> {
        let Some(bytes) = read_frame_bytes(conn).await? else { return Ok(None) };
        match self {
            Link::Rpc(_) => Ok(Some(Received { message: decode(&bytes)?, sealed: false })),
            Link::Lan(keys) => {
                let sealed = bytes.first() == Some(&ENVELOPE_SEALED);
                let payload = keys.unwrap(KeyPool::Lan, Channel::Stream, &bytes, peer).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::PermissionDenied, "frame refused by the gossip keyring")
                })?;
                Ok(Some(Received { message: decode(&payload)?, sealed }))
            }
        }
    }
}
