//! `conclave tls ca create` and `conclave tls cert create`: Consul's commands for making an agent CA and the
//! server, client and CLI certificates it signs (command/tls). The certificate building itself is in
//! `security::issue`, free of flags and files, which the agent uses for auto_encrypt too.

pub mod ca_create;
pub mod cert_create;
pub mod files;

#[cfg(test)]
mod tests;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum TlsCommand {
    /// Manages the agent CA.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Manages agent certificates.
    #[command(subcommand)]
    Cert(CertCommand),
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Creates a new agent CA.
    Create(ca_create::CaCreateArgs),
}

#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Creates a new certificate signed by the agent CA.
    Create(cert_create::CertCreateArgs),
}

pub fn tls(command: TlsCommand) -> anyhow::Result<()> {
    match command {
        TlsCommand::Ca(CaCommand::Create(args)) => ca_create::ca_create(args),
        TlsCommand::Cert(CertCommand::Create(args)) => cert_create::cert_create(args),
    }
}
