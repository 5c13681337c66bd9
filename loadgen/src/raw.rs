//! Plain TCP connections to the ledger, for the benchmarks that hold many
//! of them open (live feeds, connection floods), where a full HTTP client
//! per connection would measure the client rather than the server.
//!
//! One source address gives at most ~28,000 ephemeral ports towards one
//! server port, so connections to a loopback server are spread over the
//! source addresses `127.0.0.2`, `127.0.0.3`, … (all of `127/8` is local
//! on Linux), [`PER_SOURCE`] each.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use tokio::net::{TcpSocket, TcpStream};

use crate::BenchError;

/// Connections opened from one source address before the next is used.
const PER_SOURCE: usize = 20_000;

/// Where a ledger's base URL points, as a socket address and a `Host`.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
}

impl Target {
    pub fn of(url: &str) -> Result<Self, BenchError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| BenchError::Config(format!("--url {url:?}: {e}")))?;
        if parsed.scheme() != "http" {
            return Err(BenchError::Config(format!(
                "--url {url:?}: only http:// is measured here"
            )));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| BenchError::Config(format!("--url {url:?} has no host")))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| BenchError::Config(format!("--url {url:?}: {e}")))?
            .next()
            .ok_or_else(|| BenchError::Config(format!("--url {url:?}: no address")))?;
        Ok(Self {
            addr,
            host: format!("{host}:{port}"),
        })
    }

    /// Opens connection number `index`, from a source address of its own
    /// group when the server is on the IPv4 loopback.
    pub async fn connect(&self, index: usize) -> std::io::Result<TcpStream> {
        let IpAddr::V4(ip) = self.addr.ip() else {
            return TcpStream::connect(self.addr).await;
        };
        if !ip.is_loopback() {
            return TcpStream::connect(self.addr).await;
        }
        let group = u8::try_from(2 + index / PER_SOURCE).unwrap_or(u8::MAX);
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, group)),
            0,
        ))?;
        socket.connect(self.addr).await
    }
}

/// Raises this process's open-file limit to its hard limit (or `wanted`,
/// if lower) and returns the soft limit in force.
pub fn raise_open_files(wanted: u64) -> u64 {
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(error = %err, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft)
        }
    }
}
