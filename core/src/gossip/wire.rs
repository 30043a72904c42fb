//! Gossip packet encoding: foca's `Codec` over bincode 2 (the same standard config as `crate::codec`), a
//! version byte in front of every header, and a byte limit on every decode so a peer cannot make us
//! allocate more than one packet's worth.

use bytes::{Buf, BufMut};
use foca::{Header, Member};

use super::config::PACKET_BYTES_MAX;
use super::identity::NodeId;

/// First byte of every gossip packet. Bump it when the header or identity changes shape.
pub const GOSSIP_WIRE_VERSION: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("gossip wire version {0}, this build speaks {GOSSIP_WIRE_VERSION}")]
    UnknownVersion(u8),
    #[error("truncated gossip packet")]
    Truncated,
    #[error("cannot decode gossip packet: {0}")]
    Decode(String),
    #[error("cannot encode gossip packet: {0}")]
    Encode(String),
}

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<PACKET_BYTES_MAX>,
> {
    bincode::config::standard().with_limit::<PACKET_BYTES_MAX>()
}

fn put<T: serde::Serialize>(value: &T, mut buf: impl BufMut) -> Result<(), WireError> {
    let bytes = bincode::serde::encode_to_vec(value, config()).map_err(|e| WireError::Encode(e.to_string()))?;
    if buf.remaining_mut() < bytes.len() {
        return Err(WireError::Encode("no room left in the packet".to_string()));
    }
    buf.put_slice(&bytes);
    Ok(())
}

fn take<T: serde::de::DeserializeOwned>(mut buf: impl Buf) -> Result<T, WireError> {
    // foca hands us the packet as one slice; a split buffer would be a foca change, so refuse it.
    if buf.chunk().len() != buf.remaining() {
        return Err(WireError::Decode("non-contiguous buffer".to_string()));
    }
    let (value, used) = bincode::serde::decode_from_slice(buf.chunk(), config()).map_err(|e| match e {
        bincode::error::DecodeError::UnexpectedEnd { .. } => WireError::Truncated,
        other => WireError::Decode(other.to_string()),
    })?;
    buf.advance(used);
    Ok(value)
}

/// foca's codec for [`NodeId`].
#[derive(Debug, Default, Clone, Copy)]
pub struct WireCodec;

impl foca::Codec<NodeId> for WireCodec {
    type Error = WireError;

    fn encode_header(&mut self, header: &Header<NodeId>, mut buf: impl BufMut) -> Result<(), WireError> {
        if !buf.has_remaining_mut() {
            return Err(WireError::Encode("no room left in the packet".to_string()));
        }
        buf.put_u8(GOSSIP_WIRE_VERSION);
        put(header, buf)
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<NodeId>, WireError> {
        if !buf.has_remaining() {
            return Err(WireError::Truncated);
        }
        let version = buf.get_u8();
        if version != GOSSIP_WIRE_VERSION {
            return Err(WireError::UnknownVersion(version));
        }
        take(buf)
    }

    fn encode_member(&mut self, member: &Member<NodeId>, buf: impl BufMut) -> Result<(), WireError> {
        put(member, buf)
    }

    fn decode_member(&mut self, buf: impl Buf) -> Result<Member<NodeId>, WireError> {
        take(buf)
    }
}
