//! Flight descriptors and tickets to `mover.v1` reads and writes.
//!
//! A path descriptor names a dataset (`["demo", "main", "orders"]`); a command descriptor
//! carries a `mover.v1.Command`. Tickets are the auth layer's business (they are signed).

use arrow_flight::FlightDescriptor;
use arrow_flight::flight_descriptor::DescriptorType;
use mover_proto::{
    Command, ExistingTable, Path, Read, Write, WritePart, command::Kind, read::What,
};
use prost::Message;

use crate::error::{Error, Result};

pub fn read_from_descriptor(d: &FlightDescriptor) -> Result<Read> {
    match d.r#type() {
        DescriptorType::Path => Ok(read_path(d.path.clone())),
        DescriptorType::Cmd => match decode_command(&d.cmd)? {
            Kind::Read(read) if read.part.is_some() => Err(Error::invalid(
                "a descriptor may not name a part; parts come in GetFlightInfo's tickets",
            )),
            Kind::Read(read) => Ok(read),
            Kind::Write(_) | Kind::Part(_) => Err(Error::invalid(
                "this descriptor holds a write command; reading needs a path or a read command",
            )),
        },
        DescriptorType::Unknown => Err(Error::invalid("the descriptor has no type")),
    }
}

pub fn write_from_descriptor(d: &FlightDescriptor) -> Result<Write> {
    match d.r#type() {
        DescriptorType::Path => Ok(Write {
            path: Some(Path {
                parts: d.path.clone(),
            }),
            existing_table: ExistingTable::Fail as i32,
            ..Default::default()
        }),
        DescriptorType::Cmd => match decode_command(&d.cmd)? {
            Kind::Write(write) => Ok(write),
            Kind::Part(_) => Err(Error::invalid(
                "this descriptor names a part of a write in parts, not a write",
            )),
            Kind::Read(_) => Err(Error::invalid(
                "this descriptor holds a read command; DoPut needs a path or a write command",
            )),
        },
        DescriptorType::Unknown => Err(Error::invalid("the descriptor has no type")),
    }
}

/// The part of a write in parts a DoPut's descriptor names, if it names one.
pub fn part_from_descriptor(d: &FlightDescriptor) -> Result<Option<WritePart>> {
    if d.r#type() != DescriptorType::Cmd {
        return Ok(None);
    }
    match decode_command(&d.cmd)? {
        Kind::Part(part) => Ok(Some(part)),
        _ => Ok(None),
    }
}

pub fn read_path(parts: Vec<String>) -> Read {
    Read {
        what: Some(What::Path(Path { parts })),
        ..Default::default()
    }
}

fn decode_command(cmd: &[u8]) -> Result<Kind> {
    let command = Command::decode(cmd).map_err(|e| {
        Error::invalid(format!(
            "the command descriptor is not a mover.v1.Command: {e}"
        ))
    })?;
    command
        .kind
        .ok_or_else(|| Error::invalid("the command descriptor holds no command"))
}

/// "demo/main/ord" as a listing prefix; an empty expression lists everything.
pub fn prefix_from_criteria(expression: &[u8]) -> Result<Vec<String>> {
    let text = std::str::from_utf8(expression)
        .map_err(|_| Error::invalid("the ListFlights criteria must be UTF-8 text"))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(vec![]);
    }
    Ok(text.split('/').map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_descriptor_reads_and_writes() {
        let d = FlightDescriptor::new_path(vec!["demo".into(), "t".into()]);
        let r = read_from_descriptor(&d).unwrap();
        assert!(matches!(r.what, Some(What::Path(p)) if p.parts == ["demo", "t"]));
        let w = write_from_descriptor(&d).unwrap();
        assert_eq!(w.existing_table(), ExistingTable::Fail);
    }

    #[test]
    fn garbage_command_is_invalid_not_internal() {
        let d = FlightDescriptor::new_cmd(vec![0xff, 0xff, 0xff]);
        let e = read_from_descriptor(&d).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::InvalidArgument);
    }

    #[test]
    fn criteria_prefixes() {
        assert!(prefix_from_criteria(b"").unwrap().is_empty());
        assert_eq!(
            prefix_from_criteria(b"files/out/").unwrap(),
            ["files", "out", ""]
        );
    }
}
