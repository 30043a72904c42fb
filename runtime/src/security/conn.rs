//! Connections of the node's own protocols. Every connection to server RPC starts with one mode byte:
//! `MODE_PLAIN` and frames follow, or `MODE_TLS` and a TLS handshake follows, after which frames run
//! inside TLS. `Conn` is either kind, so the pool and the server handle both alike; `PeerAuth` says what
//! the accepting side learnt of the peer (whether TLS verified a certificate, and whether that
//! certificate names a server).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::tls::RpcTls;

pub const MODE_PLAIN: u8 = 0x01;
pub const MODE_TLS: u8 = 0x03;

/// How long an accepted connection may take to say its mode and finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A plain or TLS connection over the Env's stream.
pub enum Conn<S> {
    Plain(S),
    Tls(Box<tokio_rustls::TlsStream<S>>),
}

/// What an accepting server knows of the peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerAuth {
    /// The connection runs over TLS.
    pub tls: bool,
    /// TLS verified a certificate signed by the CA.
    pub verified: bool,
    /// That certificate names `server.<dc>.<domain>`.
    pub server: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Conn::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Conn::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Conn::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Conn::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens server RPC on a dialled stream: TLS when outgoing RPC uses it, else plain.
pub async fn open_rpc<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, tls: &RpcTls) -> io::Result<Conn<S>> {
    match tls.connector() {
        Some((connector, name)) => {
            stream.write_all(&[MODE_TLS]).await?;
            let stream = connector.connect(name, stream).await?;
            Ok(Conn::Tls(Box::new(tokio_rustls::TlsStream::Client(stream))))
        }
        None => {
            stream.write_all(&[MODE_PLAIN]).await?;
            Ok(Conn::Plain(stream))
        }
    }
}

/// Accepts server RPC on an accepted stream: reads the mode, runs the TLS handshake, and refuses plain
/// connections when `verify_incoming` is on (they may not send anything at all).
pub async fn accept_rpc<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    tls: &RpcTls,
) -> io::Result<(Conn<S>, PeerAuth)> {
    let accepted = async {
        match stream.read_u8().await? {
            MODE_PLAIN if tls.verify_incoming => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "plaintext RPC refused: verify_incoming requires TLS with a certificate signed by the CA",
            )),
            MODE_PLAIN => Ok((Conn::Plain(stream), PeerAuth::default())),
            MODE_TLS => {
                let Some(acceptor) = tls.acceptor() else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "TLS requested but this agent has no certificate",
                    ));
                };
                let stream = acceptor.accept(stream).await?;
                let certificate = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first().cloned());
                let auth = PeerAuth {
                    tls: true,
                    verified: certificate.is_some(),
                    server: certificate.as_ref().is_some_and(|cert| tls.names_a_server(cert)),
                };
                Ok((Conn::Tls(Box::new(tokio_rustls::TlsStream::Server(stream))), auth))
            }
            other => Err(io::Error::new(io::ErrorKind::InvalidData, format!("unknown RPC mode byte {other:#04x}"))),
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, accepted).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "RPC handshake timed out")),
    }
}
