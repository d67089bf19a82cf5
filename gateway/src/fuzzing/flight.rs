//! Targets for what arrives in a Flight call's own fields, before any connector sees it:
//! tickets and handles, descriptors, uploads, bucket queries.

use std::sync::OnceLock;

use arrow_flight::FlightData;
use futures::StreamExt;
use mover_proto::END_OF_UPLOAD;
use mover_proto::read::What;

use super::{block_on, not_internal, valid};
use crate::auth::Caller;
use crate::auth::tickets::Tickets;
use crate::connectors::TableName;
use crate::connectors::objects::Key;
use crate::flight::put::{Upload, schema_if_any};
use crate::flight::sql::bucket_query;

/// A descriptor's command (as a read, a write and a part), a path cut at `/`, and
/// ListFlights criteria; each path that comes out is parsed as a bucket key and a table name.
pub fn descriptors(data: &[u8]) {
    use arrow_flight::FlightDescriptor;
    let text = String::from_utf8_lossy(data);
    let command = FlightDescriptor::new_cmd(data.to_vec());
    let path = FlightDescriptor::new_path(text.split('/').map(str::to_string).collect());
    let mut paths = vec![];
    for d in [&command, &path] {
        match crate::flight::read_from_descriptor(d) {
            Ok(read) => {
                if let Some(What::Path(p)) = read.what {
                    paths.push(p.parts);
                }
            }
            Err(e) => not_internal(&e, "a read descriptor"),
        }
        match crate::flight::write_from_descriptor(d) {
            Ok(write) => paths.extend(write.path.map(|p| p.parts)),
            Err(e) => not_internal(&e, "a write descriptor"),
        }
        if let Err(e) = crate::flight::part_from_descriptor(d) {
            not_internal(&e, "a part descriptor");
        }
    }
    if let Ok(prefix) = crate::flight::prefix_from_criteria(data) {
        paths.push(prefix);
    }
    for parts in paths {
        let parts = parts.get(1..).unwrap_or_default(); // below the source's name
        if let Err(e) = Key::parse(parts) {
            not_internal(&e, "a bucket key");
        }
        match TableName::from_path(parts, "public") {
            Ok(table) => drop(table.quoted()),
            Err(e) => not_internal(&e, "a table name"),
        }
    }
}

/// A DoPut's messages (or a Flight SQL statement's parameters), read as the gateway reads
/// them: each message is a header and a body behind two-byte lengths, and a flags byte whose
/// low bit makes it the end-of-upload marker. Every batch that decodes must be sound.
pub fn upload(data: &[u8]) {
    // The decoder turns arrow-ipc's panics into errors (`flight::put::Guarded`); libFuzzer's
    // hook would abort on them first. A panic that escapes is still a crash: libfuzzer-sys
    // aborts on it after the default hook has printed it.
    static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    let mut messages = Vec::new();
    let mut rest = data;
    while let [flags, tail @ ..] = rest {
        let (header, tail) = sized(tail);
        let (body, tail) = sized(tail);
        rest = tail;
        let mut d = FlightData::new()
            .with_data_header(header.to_vec())
            .with_data_body(body.to_vec());
        if flags & 1 == 1 {
            d = d.with_app_metadata(END_OF_UPLOAD.to_vec());
        }
        messages.push(Ok(d));
    }
    let upload = Upload::default();
    let mut decoder = upload.decoder(futures::stream::iter(messages));
    block_on(async {
        let schema = match schema_if_any(&mut decoder).await {
            Ok(Some(schema)) => schema,
            Ok(None) => return,
            Err(e) => return not_internal(&e, "an upload"),
        };
        let mut batches = upload.batches(decoder, true);
        while let Some(batch) = batches.next().await {
            match batch {
                Ok(batch) => valid(&batch, &schema),
                Err(e) => return not_internal(&e, "an upload"),
            }
        }
    });
}

/// The next `len(2 bytes, big-endian) bytes` of `data`, as many as there are.
fn sized(data: &[u8]) -> (&[u8], &[u8]) {
    let (len, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => (0, &[][..]),
    };
    rest.split_at(len.min(rest.len()))
}

/// A Flight SQL query against a bucket's catalog, as text.
pub fn bucket_query(data: &[u8]) {
    let _ = bucket_query::parse(&String::from_utf8_lossy(data));
}

/// The ticket key of the `tickets` target.
const KEY: [u8; 32] = [7; 32];

/// `body` signed as a ticket under [`KEY`].
pub(super) fn signed(body: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    use prost::Message;
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&KEY).expect("a key");
    mac.update(body);
    mover_proto::SignedTicket {
        mac: mac.finalize().into_bytes().to_vec(),
        body: body.to_vec(),
    }
    .encode_to_vec()
}

/// Tickets and prepared statements' handles as a caller sends them back: redeemed by an
/// unauthenticated gateway (a bare `Read`), by a principal, and as a body signed with the
/// gateway's key (past the signature, to the decoding behind it).
pub fn tickets(data: &[u8]) {
    static TICKETS: OnceLock<Tickets> = OnceLock::new();
    let tickets = TICKETS.get_or_init(|| {
        Tickets::new(KEY.to_vec(), std::time::Duration::from_secs(60)).expect("tickets")
    });
    let principal = Caller::Principal("fuzzer".into());
    for caller in [&Caller::Anyone, &principal] {
        if let Err(e) = tickets.redeem(data, caller) {
            not_internal(&e, "a ticket");
        }
    }
    if let Err(e) = tickets.redeem(&signed(data), &principal) {
        not_internal(&e, "a signed ticket");
    }
}
