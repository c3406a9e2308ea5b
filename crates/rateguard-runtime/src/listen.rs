//! Binding listeners: a deep accept backlog, and optional port sharing.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

use crate::error::ServeError;

/// The two bound listeners of a replica.
#[derive(Debug)]
pub struct Listeners {
    /// The public listener: HTTP for `serve`, gRPC for `rls`.
    pub public: TcpListener,
    /// The admin listener (`/healthz`, `/readyz`, `/metrics`, `/config`).
    pub admin: TcpListener,
}

/// Binds `addr` with a deep accept backlog (bursts of thousands of
/// connections). With `reuse_port`, several listeners (one per runtime in
/// the per-core layout) can share the port and the kernel spreads
/// connections. Must be called inside a Tokio runtime.
pub fn bind_socket(addr: SocketAddr, reuse_port: bool) -> Result<TcpListener, ServeError> {
    let bind_err = |source| ServeError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_err)?;
    socket.set_reuseaddr(true).map_err(bind_err)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true).map_err(bind_err)?;
    }
    socket.bind(addr).map_err(bind_err)?;
    socket.listen(4096).map_err(bind_err)
}

/// [`bind_socket`] without port sharing.
pub fn bind_addr(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    bind_socket(addr, false)
}
