//! Columns a text format has no type for, written as text: a uuid (Arrow's canonical
//! `arrow.uuid` extension) as its 8-4-4-4-12 form in every text format, and in CSV and
//! delimited files a list, struct or map as JSON text (JSON lines writes those as JSON
//! arrays and objects of its own). Read back, the text is a string column; appending it to a
//! uuid or array column converts it there ([`crate::convert::strict_cast`]).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::json::writer::{EncoderOptions, make_encoder};

use super::Encoder;
use super::schema::MAX_CHARS;
use crate::convert;
use crate::error::{Context, Error, Result};

/// How one column is written.
#[derive(Clone, Copy, PartialEq)]
enum As {
    Itself,
    UuidText,
    JsonText,
}

fn column_as(field: &Field, nested_as_json: bool) -> As {
    if convert::is_uuid(field) {
        As::UuidText
    } else if nested_as_json && field.data_type().is_nested() {
        As::JsonText
    } else {
        As::Itself
    }
}

/// Whether a text format can hold a column of this type: scalars but bytes (hex or base64
/// would read back as text), and lists, structs and maps of them. A uuid is checked by its
/// field ([`convert::is_uuid`]).
pub fn can_hold(data_type: &DataType) -> bool {
    use DataType::*;
    match data_type {
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => false,
        Dictionary(..) | Union(..) | RunEndEncoded(..) => false,
        List(f) | LargeList(f) | ListView(f) | LargeListView(f) | FixedSizeList(f, _) => {
            can_hold(f.data_type())
        }
        Map(f, _) => can_hold(f.data_type()),
        Struct(fields) => fields.iter().all(|f| can_hold(f.data_type())),
        _ => true,
    }
}

/// `schema` as a text format writes it: its uuids (and, with `nested_as_json`, its lists,
/// structs and maps) as strings; None when every column is written as it is.
pub fn schema(schema: &Schema, nested_as_json: bool) -> Option<SchemaRef> {
    let kinds: Vec<As> = schema
        .fields()
        .iter()
        .map(|f| column_as(f, nested_as_json))
        .collect();
    if kinds.iter().all(|k| *k == As::Itself) {
        return None;
    }
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .zip(&kinds)
        .map(|(f, kind)| match kind {
            As::Itself => f.clone(),
            // A uuid's text is 36 characters: the records schema says so.
            As::UuidText => Arc::new(
                Field::new(f.name(), DataType::Utf8, f.is_nullable()).with_metadata(
                    std::collections::HashMap::from([(MAX_CHARS.to_string(), "36".to_string())]),
                ),
            ),
            As::JsonText => Arc::new(Field::new(f.name(), DataType::Utf8, f.is_nullable())),
        })
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// Writes each batch through `inner` with the columns [`schema`] turns to text converted.
pub struct AsText {
    inner: Box<dyn Encoder>,
    view: SchemaRef,
    nested_as_json: bool,
}

impl AsText {
    /// `inner` must encode `view`, the schema [`schema`] gave.
    pub fn new(inner: Box<dyn Encoder>, view: SchemaRef, nested_as_json: bool) -> Self {
        Self {
            inner,
            view,
            nested_as_json,
        }
    }

    fn convert(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        batch_as_text(batch, &self.view, self.nested_as_json)
    }
}

/// `batch` as `view` (what [`schema`] gave for its schema, or that with other metadata).
pub fn batch_as_text(
    batch: &RecordBatch,
    view: &SchemaRef,
    nested_as_json: bool,
) -> Result<RecordBatch> {
    let schema = batch.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, col)| match column_as(f, nested_as_json) {
            As::Itself => Ok(col.clone()),
            As::UuidText => Ok(convert::uuids_to_text(col)),
            As::JsonText => json_text(f, col.as_ref()),
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(view.clone(), columns).internal("a batch as text")
}

impl Encoder for AsText {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let batch = self.convert(batch)?;
        self.inner.encode(&batch)
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>> {
        self.inner.finish()
    }
}

/// Each value of a nested column as its JSON text (nulls inside it written as `null`).
fn json_text(field: &FieldRef, array: &dyn Array) -> Result<ArrayRef> {
    let options = EncoderOptions::default().with_explicit_nulls(true);
    let mut encoder = make_encoder(field, array, &options)
        .map_err(|e| Error::unsupported(format!("column {:?}: {e}", field.name())))?;
    let mut out = StringBuilder::with_capacity(array.len(), array.len() * 16);
    let mut buf = Vec::new();
    for i in 0..array.len() {
        if array.is_null(i) {
            out.append_null();
            continue;
        }
        buf.clear();
        encoder.encode(i, &mut buf);
        let text = std::str::from_utf8(&buf).internal("JSON text is UTF-8")?;
        out.append_value(text);
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{FixedSizeBinaryArray, Int32Array, ListArray, StringArray};
    use arrow::datatypes::Int32Type;

    #[test]
    fn uuids_and_lists_are_written_as_text() {
        let u = uuid::Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap();
        let uuids = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            [Some(u.as_bytes().to_vec()), None].into_iter(),
            16,
        )
        .unwrap();
        let lists = ListArray::from_iter_primitive::<Int32Type, _, _>([
            Some(vec![Some(1), None, Some(3)]),
            None,
        ]);
        let schema = Arc::new(Schema::new(vec![
            convert::uuid_field(Field::new("u", DataType::FixedSizeBinary(16), true)),
            Field::new("l", lists.data_type().clone(), true),
            Field::new("n", DataType::Int32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(uuids),
                Arc::new(lists),
                Arc::new(Int32Array::from(vec![Some(1), None])),
            ],
        )
        .unwrap();
        let view = super::schema(&schema, true).unwrap();
        let text = AsText::new(
            Box::new(super::super::jsonl::JsonlEncoder::new()),
            view,
            true,
        )
        .convert(&batch)
        .unwrap();
        let col = |i: usize| {
            text.column(i)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(col(0), [Some("67e55044-10b1-426f-9247-bb680e5fe0c8"), None]);
        assert_eq!(col(1), [Some("[1,null,3]"), None]);
        assert_eq!(text.column(2).data_type(), &DataType::Int32);
        // JSON lines keeps its lists: only the uuid is text.
        let jsonl = super::schema(&schema, false).unwrap();
        assert!(matches!(jsonl.field(1).data_type(), DataType::List(_)));
        assert_eq!(jsonl.field(0).data_type(), &DataType::Utf8);
        assert!(
            super::schema(
                &Schema::new(vec![Field::new("n", DataType::Int32, true)]),
                true
            )
            .is_none()
        );
    }
}
