//! A forwarding proxy on loopback for the proxy tests: HTTP `CONNECT` (as corporate proxies and kubectl's
//! `HTTPS_PROXY` use it) and SOCKS5 (RFC 1928, no authentication, CONNECT only) on one port. Every tunnel goes to
//! one upstream address whatever name the client asked for, as if the proxy resolved that name to it; the proxy
//! counts tunnels and records the requested destinations.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A running proxy; stops when dropped.
pub struct ForwardProxy {
    addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ForwardProxy {
    /// Listens on a free loopback port; every tunnel connects to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (targets.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let t = t.clone();
                thread::spawn(move || {
                    let _ = serve(conn, upstream, &t);
                });
            }
        });
        Self {
            addr,
            targets,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `socks5://127.0.0.1:PORT`.
    pub fn socks5_url(&self) -> String {
        format!("socks5://{}", self.addr)
    }

    /// The destinations of the tunnels opened so far (`host:port` as the client sent them), in order.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }

    /// Forgets the tunnels counted so far.
    pub fn reset(&self) {
        self.targets.lock().unwrap().clear();
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    targets: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut first = [0u8; 1];
    client.read_exact(&mut first)?;
    let target = if first[0] == 5 {
        socks5_handshake(&mut client)?
    } else {
        let mut head = first.to_vec();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            client.read_exact(&mut b)?;
            head.push(b[0]);
            if head.len() > 16 * 1024 {
                return Ok(());
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut words = head.split_whitespace();
        match (words.next(), words.next()) {
            (Some("CONNECT"), Some(target)) => target.to_string(),
            _ => {
                client.write_all(
                    b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )?;
                return Ok(());
            }
        }
    };
    let server = match TcpStream::connect(upstream) {
        Ok(s) => s,
        Err(_) => {
            if first[0] != 5 {
                client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")?;
            }
            return Ok(());
        }
    };
    targets.lock().unwrap().push(target);
    if first[0] == 5 {
        client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])?;
    } else {
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    }
    let (mut c2, mut s2) = (client.try_clone()?, server.try_clone()?);
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(Shutdown::Write);
    });
    let (mut s3, mut c3) = (server, client);
    let _ = std::io::copy(&mut s3, &mut c3);
    let _ = c3.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

/// RFC 1928 after the version byte: methods (answer "no authentication"), then a CONNECT request; returns
/// `host:port`.
fn socks5_handshake(client: &mut TcpStream) -> std::io::Result<String> {
    let mut n = [0u8; 1];
    client.read_exact(&mut n)?;
    let mut methods = vec![0u8; usize::from(n[0])];
    client.read_exact(&mut methods)?;
    client.write_all(&[5, 0])?;
    let mut req = [0u8; 4];
    client.read_exact(&mut req)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "unsupported SOCKS request");
    if req[0] != 5 || req[1] != 1 {
        return Err(bad());
    }
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a)?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name)?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a)?;
            format!("[{}]", std::net::Ipv6Addr::from(a))
        }
        _ => return Err(bad()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port)?;
    Ok(format!("{host}:{}", u16::from_be_bytes(port)))
}
