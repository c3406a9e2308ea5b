use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::*;

/// An echo server on a free port (a thread per connection); its address.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = s;
                let _ = std::io::copy(&mut r, &mut w);
            });
        }
    });
    addr
}

#[test]
fn every_exchange_takes_at_least_the_rtt_and_bytes_stay_in_order() {
    let net = DelayNet::new(Duration::from_millis(20));
    let proxy = net.proxy(echo_server()).unwrap();
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_nodelay(true).unwrap();

    let started = Instant::now();
    s.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    assert!(started.elapsed() >= Duration::from_millis(20), "one RTT");

    // Many small writes, pipelined: all back, in order, after one RTT.
    net.set_rtt(Duration::from_millis(2));
    assert_eq!(net.rtt(), Duration::from_millis(2));
    let sent: Vec<u8> = (0..2000u32).flat_map(|i| i.to_le_bytes()).collect();
    let started = Instant::now();
    for chunk in sent.chunks(4) {
        s.write_all(chunk).unwrap();
    }
    let mut back = vec![0u8; sent.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, sent, "no byte lost or reordered");
    assert!(started.elapsed() >= Duration::from_millis(2));
}

#[test]
fn a_dead_upstream_closes_the_client_connection_and_drop_closes_the_rest() {
    let net = DelayNet::new(Duration::ZERO);
    // A port nothing listens on.
    let nothing = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut s = TcpStream::connect(net.proxy(nothing).unwrap()).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "closed");

    let mut open = TcpStream::connect(net.proxy(echo_server()).unwrap()).unwrap();
    open.write_all(b"x").unwrap();
    open.read_exact(&mut buf).unwrap();
    drop(net);
    assert_eq!(open.read(&mut buf).unwrap_or(0), 0, "closed by drop");
}
