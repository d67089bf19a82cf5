//! Free ports and a relay that counts what passes.

/// A TCP relay on a free loopback port to `target` that counts the bytes each way: what a
/// client behind it sent and received, TLS included.
pub struct CountingProxy {
    pub addr: std::net::SocketAddr,
    /// Bytes from the target to the client.
    pub down: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Bytes from the client to the target.
    pub up: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl CountingProxy {
    pub fn start(target: std::net::SocketAddr) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (down, up) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let pump =
            |mut from: std::net::TcpStream, mut to: std::net::TcpStream, count: Arc<AtomicU64>| {
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match std::io::Read::read(&mut from, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        count.fetch_add(n as u64, Ordering::Relaxed);
                        if std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    let _ = from.shutdown(std::net::Shutdown::Both);
                });
            };
        let (d, u) = (down.clone(), up.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(client, server, u.clone());
                pump(s2, c2, d.clone());
            }
        });
        CountingProxy { addr, down, up }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A TCP relay on a free loopback port to `target` that, once armed with a byte budget, cuts
/// the connection that spends it (both ways, as a network failure or a proxy's restart
/// would), then disarms: connections made after the cut pass untouched.
pub struct CuttingProxy {
    pub addr: std::net::SocketAddr,
    /// Bytes left before the cut (both ways counted); negative: disarmed.
    budget: std::sync::Arc<std::sync::atomic::AtomicI64>,
    cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CuttingProxy {
    pub fn start(target: std::net::SocketAddr) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let budget = Arc::new(AtomicI64::new(-1));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (b, c) = (budget.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                let cut = Arc::new(AtomicBool::new(false));
                let ends = [client.try_clone().unwrap(), server.try_clone().unwrap()];
                let ends = Arc::new(ends);
                let pump = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    let (budget, cuts, cut, ends) =
                        (b.clone(), c.clone(), cut.clone(), ends.clone());
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match std::io::Read::read(&mut from, &mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let left = budget.load(Ordering::SeqCst);
                            if left >= 0 {
                                let spent = budget.fetch_sub(n as i64, Ordering::SeqCst);
                                if spent >= 0 && spent < n as i64 {
                                    budget.store(-1, Ordering::SeqCst);
                                    cuts.fetch_add(1, Ordering::SeqCst);
                                    cut.store(true, Ordering::SeqCst);
                                    for end in ends.iter() {
                                        let _ = end.shutdown(std::net::Shutdown::Both);
                                    }
                                    break;
                                }
                            }
                            if cut.load(Ordering::SeqCst)
                                || std::io::Write::write_all(&mut to, &buf[..n]).is_err()
                            {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(client, server);
                pump(s2, c2);
            }
        });
        CuttingProxy { addr, budget, cuts }
    }

    /// Cut the connection that carries the next `bytes` bytes past this call.
    pub fn arm(&self, bytes: u64) {
        self.budget
            .store(bytes as i64, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.budget.store(-1, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many connections it has cut.
    pub fn cuts(&self) -> usize {
        self.cuts.load(std::sync::atomic::Ordering::SeqCst)
    }
}
