//! The cluster's auto-encrypt CA, replicated so that every server signs client agents' certificates with
//! the same key and trusts what the others signed (Consul keeps its built-in CA in Raft the same way).
//! The leader makes the key pair (outside the core: key generation needs randomness) and proposes it once;
//! the first proposal wins, later ones are refused, so two leaders racing cannot split the cluster's CA.

use serde::{Deserialize, Serialize};

/// The CA a server signs client agents' certificates with, as PEM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterCa {
    pub cert_pem: String,
    pub key_pem: String,
    /// Log index of the entry that installed it.
    pub created_index: u64,
}

/// A change to the CA table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaCommand {
    /// Installs the cluster CA if there is none yet.
    Initialize { cert_pem: String, key_pem: String },
}

/// The table: at most one CA.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaTable {
    ca: Option<ClusterCa>,
}

/// Consul's answer when the built-in CA is set up twice.
pub const ALREADY_INITIALIZED: &str = "cluster CA already initialized";

impl CaTable {
    pub fn ca(&self) -> Option<&ClusterCa> {
        self.ca.as_ref()
    }

    pub fn apply(&mut self, index: u64, command: &CaCommand) -> Result<(), String> {
        match command {
            CaCommand::Initialize { cert_pem, key_pem } => {
                if self.ca.is_some() {
                    return Err(ALREADY_INITIALIZED.to_string());
                }
                if cert_pem.is_empty() || key_pem.is_empty() {
                    return Err("cluster CA needs a certificate and a key".to_string());
                }
                self.ca =
                    Some(ClusterCa { cert_pem: cert_pem.clone(), key_pem: key_pem.clone(), created_index: index });
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn initialize(cert: &str) -> CaCommand {
        CaCommand::Initialize { cert_pem: cert.to_string(), key_pem: "key".to_string() }
    }

    #[test]
    fn first_initialize_wins_and_later_ones_are_refused() {
        let mut table = CaTable::default();
        assert_eq!(table.apply(3, &initialize("first")), Ok(()));
        assert_eq!(table.apply(4, &initialize("second")), Err(ALREADY_INITIALIZED.to_string()));
        let ca = table.ca().unwrap();
        assert_eq!((ca.cert_pem.as_str(), ca.created_index), ("first", 3));
    }

    #[test]
    fn empty_ca_is_refused() {
        let mut table = CaTable::default();
        assert!(table.apply(1, &initialize("")).is_err());
        assert!(table.ca().is_none());
    }
}
