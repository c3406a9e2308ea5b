//! The front nginx of a deployment: on a free port, or pinned to the port the
//! user asked for (`rateguard-lab up --port 8080`). Both are the testkit's
//! [`Nginx`], rendered from `compose/nginx.conf.template` and stopped by pid.

use std::net::SocketAddr;

use rateguard_testkit::{Nginx, TestkitError};

use crate::LabError;

/// A running front nginx; dropping it stops it by pid.
#[derive(Debug)]
pub struct Front(Nginx);

impl Front {
    /// Starts nginx over `upstreams`: on `port`, or on a free port when it is
    /// `None` or 0. A taken `port` gives [`LabError::PortTaken`].
    pub fn start(upstreams: &[SocketAddr], port: Option<u16>) -> Result<Self, LabError> {
        match port {
            None | Some(0) => Ok(Self(Nginx::start(upstreams)?)),
            Some(port) => match Nginx::start_on(port, upstreams) {
                Ok(nginx) => Ok(Self(nginx)),
                Err(TestkitError::AddrInUse { .. }) => Err(LabError::PortTaken {
                    port,
                    reason: std::io::Error::from(std::io::ErrorKind::AddrInUse),
                }),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Starts an nginx of the caller's `conf(port)` on a free port (the
    /// `nginx-limit-req` reference).
    pub fn with_conf(conf: impl Fn(u16) -> String) -> Result<Self, LabError> {
        Ok(Self(Nginx::start_conf(conf)?))
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// The nginx master's pid.
    pub fn pid(&self) -> u32 {
        self.0.pid()
    }
}
