//! `conclave keygen`: prints a new gossip encryption key, 32 random bytes in standard padded base64, as
//! Consul's command/keygen does (the form `encrypt` and `keyring -install` take).

use base64::Engine;
use rand::RngCore;

/// Bytes in a gossip key: AES-256, the size Consul generates.
pub const GOSSIP_KEY_BYTES: usize = 32;

pub fn keygen() -> anyhow::Result<()> {
    let mut key = [0u8; GOSSIP_KEY_BYTES];
    rand::rngs::OsRng.try_fill_bytes(&mut key).map_err(|e| anyhow::anyhow!("Error reading random data: {e}"))?;
    println!("{}", encode_key(&key));
    Ok(())
}

/// A key as the agent's configuration and the keyring API take it.
pub fn encode_key(key: &[u8; GOSSIP_KEY_BYTES]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_44_characters_of_padded_base64_that_decode_to_32_bytes() {
        let encoded = encode_key(&[0xab; GOSSIP_KEY_BYTES]);
        assert_eq!(encoded.len(), 44);
        assert!(encoded.ends_with('='));
        let decoded = base64::engine::general_purpose::STANDARD.decode(&encoded).unwrap();
        assert_eq!(decoded, vec![0xab; GOSSIP_KEY_BYTES]);
    }
}
