//! A MySQL connection of our own for one job: streaming a text-protocol result into Arrow
//! builders. mysql_async turns every row into a `Row` of heap-allocated values, one future
//! poll per row, and so drains about 550k rows/s; here a row is a slice of the read buffer,
//! parsed in place ([`super::decode::Batcher`]).
//!
//! The packets themselves (handshake, TLS request, handshake response, auth switch, column
//! definitions, error packets) and the password scrambles are mysql_common's, the crate under
//! mysql_async; this module only frames them and follows the exchange. It asks for no
//! capability it does not use: no LOCAL INFILE (the server cannot ask it for a file), no
//! multiple statements, no compression. With a CA the connection is TLS and the server's
//! certificate must chain to that CA and name the host.

use std::path::PathBuf;
use std::sync::Arc;

use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{
    AuthPlugin, AuthSwitchRequest, Column, ErrPacket, HandshakePacket, HandshakeResponse,
    SslRequest,
};
use mysql_common::proto::MySerialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

/// Where and as whom to connect (taken from the database's configured URL).
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// A Unix socket path, used instead of host and port when given.
    pub socket: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    pub tls: Option<Tls>,
    /// Statements run right after connecting (session settings).
    pub init: Vec<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "{}:{} as {:?}", self.host, self.port, self.user)
    }
}

/// TLS: the configured CA, or (when the URL asks for TLS without one) the public roots.
#[derive(Clone, Debug)]
pub struct Tls {
    pub ca: Option<PathBuf>,
}

/// The largest payload of one packet; a longer one continues in the next.
const MAX_PAYLOAD: usize = 0xFF_FFFF;
const MAX_ALLOWED_PACKET: u32 = 1 << 30;
const COM_QUERY: u8 = 0x03;

/// Packets over a byte stream, read through one buffer: a payload is handed out as a slice
/// of it, valid until the next read.
struct Packets<S> {
    io: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    seq: u8,
    /// A payload longer than one packet, joined.
    joined: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Packets<S> {
    fn new(io: S, seq: u8) -> Self {
        Self {
            io,
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
            seq,
            joined: Vec::new(),
        }
    }

    /// Until at least `n` bytes are buffered.
    async fn fill(&mut self, n: usize) -> Result<()> {
        if self.end - self.start >= n {
            return Ok(());
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        while self.end < n {
            let read = self
                .io
                .read(&mut self.buf[self.end..])
                .await
                .map_err(|e| Error::internal(format!("reading from the server: {e}")))?;
            if read == 0 {
                return Err(Error::internal("the server closed the connection"));
            }
            self.end += read;
        }
        Ok(())
    }

    /// One packet's header: its length, its sequence number checked.
    async fn header(&mut self) -> Result<usize> {
        self.fill(4).await?;
        let h = &self.buf[self.start..self.start + 4];
        let (len, seq) = (
            usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16,
            h[3],
        );
        if seq != self.seq {
            return Err(Error::internal(format!(
                "packets out of order: got {seq}, expected {}",
                self.seq
            )));
        }
        self.seq = seq.wrapping_add(1);
        self.start += 4;
        Ok(len)
    }

    /// The next payload.
    async fn read(&mut self) -> Result<&[u8]> {
        let len = self.header().await?;
        if len < MAX_PAYLOAD {
            self.fill(len).await?;
            let at = self.start;
            self.start += len;
            return Ok(&self.buf[at..at + len]);
        }
        let mut len = len;
        self.joined.clear();
        loop {
            self.fill(len).await?;
            self.joined
                .extend_from_slice(&self.buf[self.start..self.start + len]);
            self.start += len;
            if len < MAX_PAYLOAD {
                return Ok(&self.joined);
            }
            len = self.header().await?;
        }
    }

    async fn write(&mut self, payload: &[u8]) -> Result<()> {
        let mut framed = Vec::with_capacity(payload.len() + 8);
        for chunk in payload.chunks(MAX_PAYLOAD).chain(
            // A payload of exactly n × MAX_PAYLOAD ends with an empty packet.
            payload.len().is_multiple_of(MAX_PAYLOAD).then_some(&[][..]),
        ) {
            let len = chunk.len() as u32;
            framed.extend_from_slice(&len.to_le_bytes()[..3]);
            framed.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            framed.extend_from_slice(chunk);
        }
        self.io
            .write_all(&framed)
            .await
            .map_err(|e| Error::internal(format!("writing to the server: {e}")))?;
        self.io
            .flush()
            .await
            .map_err(|e| Error::internal(format!("writing to the server: {e}")))
    }

    async fn write_struct(&mut self, s: &impl MySerialize) -> Result<()> {
        let mut payload = Vec::new();
        s.serialize(&mut payload);
        self.write(&payload).await
    }

    /// The stream back, for TLS; nothing may be buffered.
    fn into_parts(self) -> (S, u8) {
        debug_assert_eq!(self.start, self.end);
        (self.io, self.seq)
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An authenticated connection, ready for queries.
pub struct Wire {
    packets: Packets<Box<dyn Io>>,
    capabilities: CapabilityFlags,
    id: u32,
    /// Columns of the result being read, until its end.
    reading: bool,
}

fn server_error(packet: &[u8], capabilities: CapabilityFlags, context: &str) -> Error {
    match ParseBuf(packet).parse::<ErrPacket>(capabilities) {
        Ok(ErrPacket::Error(e)) => {
            let state = e.sql_state_ref().map(|s| s.as_str().into_owned());
            let kind = crate::connectors::sql_errors::kind_of_mysql(
                e.error_code(),
                state.as_deref().unwrap_or("HY000"),
            );
            Error::new(kind, format!("{context}: {}", e.message_str()))
        }
        _ => Error::internal(format!("{context}: a malformed error packet")),
    }
}

fn unexpected(context: &str, packet: &[u8]) -> Error {
    Error::internal(format!(
        "{context}: unexpected packet from the server (first byte {:#04x})",
        packet.first().copied().unwrap_or(0)
    ))
}

fn malformed(what: &str, e: std::io::Error) -> Error {
    Error::internal(format!("a malformed {what} packet: {e}"))
}

fn tls_config(tls: &Tls) -> Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca {
        Some(ca) => {
            let certs = CertificateDer::pem_file_iter(ca)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| Error::invalid(format!("CA file {}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(Error::invalid(format!(
                    "CA file {}: no certificate in it",
                    ca.display()
                )));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| Error::invalid(format!("CA file {}: {e}", ca.display())))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

impl Wire {
    /// Connect, upgrade to TLS where configured, authenticate and run the init statements.
    pub async fn connect(target: &Target) -> Result<Self> {
        let cannot = |e: &dyn std::fmt::Display| Error::internal(format!("cannot connect: {e}"));
        #[cfg(unix)]
        if let Some(socket) = &target.socket {
            let stream = tokio::net::UnixStream::connect(socket)
                .await
                .map_err(|e| cannot(&e))?;
            let mut packets = Packets::new(Box::new(stream) as Box<dyn Io>, 0);
            let hello = Hello::read(&mut packets, target).await?;
            // A local socket is as private as TLS: caching_sha2 may send the password on it.
            return Self::authenticate(packets, hello, target, true).await;
        }
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| cannot(&e))?;
        let _ = tcp.set_nodelay(true);
        let mut packets = Packets::new(tcp, 0);
        let hello = Hello::read(&mut packets, target).await?;
        match &target.tls {
            None => {
                let (tcp, seq) = packets.into_parts();
                let packets = Packets::new(Box::new(tcp) as Box<dyn Io>, seq);
                Self::authenticate(packets, hello, target, false).await
            }
            Some(tls) => {
                if !hello.server.contains(CapabilityFlags::CLIENT_SSL) {
                    return Err(Error::invalid(
                        "cannot connect: the server does not offer TLS, and a CA is configured",
                    ));
                }
                let request =
                    SslRequest::new(hello.capabilities, MAX_ALLOWED_PACKET, hello.collation);
                packets.write_struct(&request).await?;
                let (tcp, seq) = packets.into_parts();
                let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                    .map_err(|e| Error::invalid(format!("cannot connect: {e}")))?;
                let stream = tls_config(tls)?
                    .connect(name, tcp)
                    .await
                    .map_err(|e| Error::invalid(format!("cannot connect: TLS: {e}")))?;
                let packets = Packets::new(Box::new(stream) as Box<dyn Io>, seq);
                Self::authenticate(packets, hello, target, true).await
            }
        }
    }

    async fn authenticate(
        mut packets: Packets<Box<dyn Io>>,
        hello: Hello,
        target: &Target,
        private: bool,
    ) -> Result<Self> {
        let password = target.password.as_deref();
        let mut plugin = hello.plugin;
        let mut nonce = hello.nonce;
        let data = scramble(&plugin, password, &nonce)?;
        let response = HandshakeResponse::new(
            data.as_deref(),
            hello.version,
            target.user.as_deref().map(str::as_bytes),
            target.database.as_deref().map(str::as_bytes),
            Some(plugin.clone()),
            hello.capabilities,
            None,
            MAX_ALLOWED_PACKET,
        );
        packets.write_struct(&response).await?;
        let mut switched = false;
        loop {
            let packet = packets.read().await?;
            match packet.first() {
                Some(0x00) => break,
                Some(0xFF) => {
                    return Err(server_error(packet, hello.capabilities, "cannot connect"));
                }
                Some(0xFE) if !switched => {
                    let request = ParseBuf(packet)
                        .parse::<AuthSwitchRequest>(())
                        .map_err(|e| malformed("auth switch", e))?;
                    plugin = request.auth_plugin().into_owned();
                    nonce = request.plugin_data().to_vec();
                    switched = true;
                    let data = scramble(&plugin, password, &nonce)?.unwrap_or_default();
                    packets.write(&data).await?;
                }
                // caching_sha2_password: 3 = the cached scramble matched, an OK follows.
                Some(0x01)
                    if plugin == AuthPlugin::CachingSha2Password
                        && packet.get(1) == Some(&0x03) => {}
                // 4 = full authentication: the password itself, on a private channel, or
                // encrypted with the server's RSA key.
                Some(0x01)
                    if plugin == AuthPlugin::CachingSha2Password
                        && packet.get(1) == Some(&0x04) =>
                {
                    let mut pass = password.unwrap_or_default().as_bytes().to_vec();
                    pass.push(0);
                    if private {
                        packets.write(&pass).await?;
                    } else {
                        packets.write(&[0x02]).await?;
                        let key = packets.read().await?;
                        let key = key.get(1..).unwrap_or_default().to_vec();
                        for (i, byte) in pass.iter_mut().enumerate() {
                            *byte ^= nonce[i % nonce.len()];
                        }
                        packets
                            .write(&mysql_common::crypto::encrypt(&pass, &key))
                            .await?;
                    }
                }
                _ => return Err(unexpected("cannot connect", packet)),
            }
        }
        let mut wire = Self {
            packets,
            capabilities: hello.capabilities,
            id: hello.id,
            reading: false,
        };
        for statement in &target.init {
            wire.execute(statement).await?;
        }
        Ok(wire)
    }

    /// The server's id of this connection (for `KILL QUERY`).
    pub fn id(&self) -> u32 {
        self.id
    }

    async fn send_query(&mut self, sql: &str) -> Result<()> {
        self.packets.seq = 0;
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(COM_QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.packets.write(&payload).await
    }

    /// Run a statement that returns no rows.
    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        self.send_query(sql).await?;
        let packet = self.packets.read().await?;
        match packet.first() {
            Some(0x00) => Ok(()),
            Some(0xFF) => Err(server_error(packet, self.capabilities, "the statement")),
            _ => Err(unexpected("a statement that returns no rows", packet)),
        }
    }

    /// Run a query and read its column definitions; its rows follow from [`Wire::row`].
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Column>> {
        self.send_query(sql).await?;
        let packet = self.packets.read().await?;
        let count = match packet.first() {
            Some(0xFF) => return Err(server_error(packet, self.capabilities, "the query")),
            Some(0x00) => return Err(Error::invalid("the query returns no rows")),
            _ => match lenenc(packet, &mut 0) {
                Some(Some(n)) if n > 0 => n,
                _ => return Err(unexpected("the query", packet)),
            },
        };
        let mut columns = Vec::with_capacity(count);
        for _ in 0..count {
            let packet = self.packets.read().await?;
            columns.push(
                ParseBuf(packet)
                    .parse::<Column>(())
                    .map_err(|e| malformed("column definition", e))?,
            );
        }
        let end = self.packets.read().await?;
        if !is_eof(end) {
            return Err(unexpected("the end of the column definitions", end));
        }
        self.reading = true;
        Ok(columns)
    }

    /// The next row of the result as the server sent it (a length-encoded text or NULL for
    /// each column), or None at its end.
    pub async fn row(&mut self) -> Result<Option<&[u8]>> {
        if !self.reading {
            return Ok(None);
        }
        let capabilities = self.capabilities;
        let packet = self.packets.read().await?;
        match packet.first() {
            _ if is_eof(packet) => {
                self.reading = false;
                Ok(None)
            }
            Some(0xFF) => {
                self.reading = false;
                Err(server_error(packet, capabilities, "reading"))
            }
            _ => Ok(Some(packet)),
        }
    }
}

/// The end of a column list or of the rows (we never ask for CLIENT_DEPRECATE_EOF). A row
/// can start with 0xFE only as an 8-byte length, so it is never this short.
fn is_eof(packet: &[u8]) -> bool {
    packet.first() == Some(&0xFE) && packet.len() < 9
}

/// A length-encoded integer at `*at`: Some(None) is the NULL marker; None is a short packet.
pub fn lenenc(packet: &[u8], at: &mut usize) -> Option<Option<usize>> {
    let first = *packet.get(*at)?;
    let width = match first {
        0xFB => {
            *at += 1;
            return Some(None);
        }
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        0xFF => return None,
        n => {
            *at += 1;
            return Some(Some(usize::from(n)));
        }
    };
    let bytes = packet.get(*at + 1..*at + 1 + width)?;
    let n = bytes.iter().rev().fold(0u64, |n, &b| n << 8 | u64::from(b));
    *at += 1 + width;
    Some(Some(usize::try_from(n).ok()?))
}

/// What the server's greeting says, and the capabilities both sides share.
struct Hello {
    server: CapabilityFlags,
    capabilities: CapabilityFlags,
    version: (u16, u16, u16),
    collation: u8,
    id: u32,
    nonce: Vec<u8>,
    plugin: AuthPlugin<'static>,
}

impl Hello {
    async fn read<S: AsyncRead + AsyncWrite + Unpin>(
        packets: &mut Packets<S>,
        target: &Target,
    ) -> Result<Self> {
        let packet = packets.read().await?;
        if packet.first() == Some(&0xFF) {
            return Err(server_error(
                packet,
                CapabilityFlags::empty(),
                "cannot connect",
            ));
        }
        let hello = ParseBuf(packet)
            .parse::<HandshakePacket>(())
            .map_err(|e| malformed("handshake", e))?;
        let mut nonce = hello.scramble_1_ref().to_vec();
        nonce.extend_from_slice(hello.scramble_2_ref().unwrap_or_default());
        // The scramble is 20 bytes; the server may send its terminating zero.
        nonce.resize(20, 0);
        let server = hello.capabilities();
        let mut wanted = CapabilityFlags::CLIENT_LONG_PASSWORD
            | CapabilityFlags::CLIENT_LONG_FLAG
            | CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_TRANSACTIONS
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
        if target.tls.is_some() {
            wanted |= CapabilityFlags::CLIENT_SSL;
        }
        if target.database.is_some() {
            wanted |= CapabilityFlags::CLIENT_CONNECT_WITH_DB;
        }
        let version = hello
            .maria_db_server_version_parsed()
            .or_else(|| hello.server_version_parsed())
            .unwrap_or((0, 0, 0));
        let plugin = match hello.auth_plugin() {
            Some(AuthPlugin::CachingSha2Password) => AuthPlugin::CachingSha2Password,
            _ => AuthPlugin::MysqlNativePassword,
        };
        Ok(Self {
            server,
            capabilities: server & wanted,
            version,
            // utf8mb4_general_ci; the init statements set the session's names anyway.
            collation: 45,
            id: hello.connection_id(),
            nonce,
            plugin,
        })
    }
}

/// The answer to the server's challenge for the plugins we speak.
fn scramble(
    plugin: &AuthPlugin<'_>,
    password: Option<&str>,
    nonce: &[u8],
) -> Result<Option<Vec<u8>>> {
    match plugin {
        AuthPlugin::MysqlNativePassword | AuthPlugin::CachingSha2Password | AuthPlugin::Ed25519 => {
            Ok(plugin.gen_data(password, nonce).map(|data| {
                let mut bytes = Vec::new();
                data.serialize(&mut bytes);
                bytes
            }))
        }
        other => Err(Error::invalid(format!(
            "cannot connect: the server asks for the {:?} authentication plugin; \
             mysql_native_password, caching_sha2_password and client_ed25519 are supported",
            String::from_utf8_lossy(other.as_bytes())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_encoded_integers_and_null() {
        let packet = [
            0xFB, 0x05, 0xFC, 0x34, 0x12, 0xFD, 1, 2, 3, 0xFE, 1, 0, 0, 0, 0, 0, 0, 0,
        ];
        let mut at = 0;
        assert_eq!(lenenc(&packet, &mut at), Some(None));
        assert_eq!(lenenc(&packet, &mut at), Some(Some(5)));
        assert_eq!(lenenc(&packet, &mut at), Some(Some(0x1234)));
        assert_eq!(lenenc(&packet, &mut at), Some(Some(0x030201)));
        assert_eq!(lenenc(&packet, &mut at), Some(Some(1)));
        assert_eq!(at, packet.len());
        assert_eq!(lenenc(&packet, &mut at), None);
        assert_eq!(lenenc(&[0xFC, 1], &mut 0), None);
    }

    #[tokio::test]
    async fn packets_split_and_join_across_reads() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut packets = Packets::new(client, 0);
        let big = vec![7u8; MAX_PAYLOAD + 10];
        let writer = tokio::spawn(async move {
            let mut raw = Vec::new();
            for (seq, chunk) in [&b"hello"[..], &big[..MAX_PAYLOAD], &big[MAX_PAYLOAD..]]
                .iter()
                .enumerate()
            {
                raw.extend_from_slice(&(chunk.len() as u32).to_le_bytes()[..3]);
                raw.push(seq as u8);
                raw.extend_from_slice(chunk);
            }
            // Out of order: sequence 9 where 3 is due.
            raw.extend_from_slice(&[1, 0, 0, 9, 0]);
            server.write_all(&raw).await.unwrap();
        });
        assert_eq!(packets.read().await.unwrap(), b"hello");
        let joined = packets.read().await.unwrap();
        assert_eq!(joined.len(), MAX_PAYLOAD + 10);
        assert!(joined.iter().all(|&b| b == 7));
        let err = packets.read().await.unwrap_err();
        assert!(err.to_string().contains("out of order"), "{err}");
        writer.await.unwrap();
    }
}
