//! Reads: a text-protocol result streamed off a connection of our own ([`super::wire`]), each
//! row parsed in place into the batch being built ([`super::decode`]); the schema from the
//! result's columns, completed for tables by the catalog. A reader that goes away has its
//! query killed on the server.

use arrow::datatypes::{Schema, SchemaRef};
use futures::StreamExt;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::types::{self, Declared, Kind};
use super::{Mysql, bind, db_error, decode, quote, wire};
use crate::connectors::{DatasetInfo, ReadSpec, ReadTarget};
use crate::error::{Error, Result};
use crate::transfer::BatchStream;

impl Mysql {
    /// The SELECT for a read, and the catalog's word on a table's columns. A query is checked
    /// to be one statement that returns rows (it is prepared first), with a value bound to
    /// each placeholder when it is to be read rather than described; the reader runs it in a
    /// READ ONLY transaction.
    async fn prepare_read(
        &self,
        conn: &mut Conn,
        spec: &ReadSpec,
        reading: bool,
    ) -> Result<(String, Option<Vec<(String, Declared)>>)> {
        if spec.part.is_some() && matches!(spec.target, ReadTarget::Query { .. }) {
            return Err(Error::invalid("a query is not read in parts"));
        }
        match &spec.target {
            ReadTarget::Dataset(path) => {
                let table = self.table(path)?;
                let declared = self.declared(conn, &table).await?.ok_or_else(|| {
                    Error::not_found(format!("table {table} not found in database {}", self.name))
                })?;
                // The text protocol prints FLOAT to 6 digits; as DOUBLE its value is exact.
                let list: Vec<String> = declared
                    .iter()
                    .map(|(n, d)| match d.data_type.as_str() {
                        "float" => format!("CAST({q} AS DOUBLE) AS {q}", q = quote(n)),
                        _ => quote(n),
                    })
                    .collect();
                // A part is a range of the integer primary key.
                let range = match &spec.part {
                    Some(part) => crate::connectors::ranges::filter(Some(part), &quote(&part.key)),
                    None => String::new(),
                };
                let select = format!("SELECT {} FROM {}{range}", list.join(", "), table.quoted());
                Ok((select, Some(declared)))
            }
            ReadTarget::Query { sql, params } => {
                // Preparing refuses more than one statement; a statement without result
                // columns is not a query.
                let stmt = conn
                    .prep(sql.as_str())
                    .await
                    .map_err(|e| db_error(e, "the query"))?;
                let bound = params.as_ref().map_or(0, |p| p.num_columns());
                let placeholders = stmt.num_params();
                match params {
                    Some(_) if bound != usize::from(placeholders) => {
                        return Err(Error::invalid(format!(
                            "the query has {placeholders} placeholders, but {bound} parameters \
                             are bound"
                        )));
                    }
                    None if reading && placeholders > 0 => {
                        return Err(Error::invalid(format!(
                            "the query has {placeholders} placeholders and no parameters are bound"
                        )));
                    }
                    _ => {}
                }
                let returns_rows = !stmt.columns().is_empty();
                conn.close(stmt)
                    .await
                    .map_err(|e| db_error(e, "the query"))?;
                if !returns_rows {
                    return Err(Error::invalid(
                        "the query returns no rows; only queries are accepted",
                    ));
                }
                Ok((sql.clone(), None))
            }
        }
    }

    /// Ask the server to stop connection `id`'s query (its reader went away).
    fn cancel(&self, id: u32) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Ok(mut conn) = this.connect().await {
                let _ = conn.query_drop(format!("KILL QUERY {id}")).await;
                tracing::info!(id, "cancelled a MySQL read whose reader went away");
            }
        });
    }

    pub(super) async fn describe_read(&self, spec: &ReadSpec) -> Result<DatasetInfo> {
        let mut conn = self.connect().await?;
        let (select, declared) = self.prepare_read(&mut conn, spec, false).await?;
        // Preparing gives the result's columns without running it.
        let stmt = conn
            .prep(select.as_str())
            .await
            .map_err(|e| db_error(e, "describing"))?;
        let (schema, _) = schema_of(&stmt.columns(), declared.as_ref())?;
        Ok(DatasetInfo {
            path: match &spec.target {
                ReadTarget::Dataset(p) => p.clone(),
                ReadTarget::Query { .. } => vec![],
            },
            schema,
            total_records: None,
            total_bytes: None,
            view: false,
        })
    }

    /// One task reads the rows off a [`wire`] connection and parses each straight into the
    /// batch being built; the catalog is read on a mysql_async connection.
    pub(super) async fn read(&self, spec: &ReadSpec) -> Result<(SchemaRef, BatchStream)> {
        let (schema_tx, schema_rx) = oneshot::channel::<Result<SchemaRef>>();
        let (tx, rx) = mpsc::channel::<Result<arrow::array::RecordBatch>>(2);
        let this = self.clone();
        let spec = spec.clone();
        let label = match &spec.target {
            ReadTarget::Dataset(p) => self.label(&p.join("/")),
            ReadTarget::Query { .. } => format!("{} query", self.name),
        };
        tokio::spawn(async move {
            let mut schema_tx = Some(schema_tx);
            let mut conn_id = None;
            let result: Result<bool> = async {
                // The connection the rows come over: our own text-protocol reader, or for a
                // query with parameters a mysql_async connection that prepares and binds it.
                let (mut wire, mut conn) = (None, None);
                let bound = match &spec.target {
                    ReadTarget::Query {
                        params: Some(params),
                        ..
                    } => Some(bind::values(params)?),
                    _ => None,
                };
                let (declared, mut rows) = match bound {
                    None => {
                        let wire = wire.insert(this.wire().await?);
                        conn_id = Some(wire.id());
                        let (select, declared) = {
                            let mut conn = this.connect().await?;
                            this.prepare_read(&mut conn, &spec, true).await?
                        };
                        if matches!(spec.target, ReadTarget::Query { .. }) {
                            wire.execute("START TRANSACTION READ ONLY").await?;
                        }
                        let columns = wire.query(&select).await?;
                        (declared, Rows::Text { wire, columns })
                    }
                    Some(values) => {
                        let conn = conn.insert(this.connect().await?);
                        conn_id = Some(conn.id());
                        let (select, declared) = this.prepare_read(conn, &spec, true).await?;
                        conn.query_drop("START TRANSACTION READ ONLY")
                            .await
                            .map_err(|e| db_error(e, "starting a read-only transaction"))?;
                        let result = conn
                            .exec_iter(select.as_str(), mysql_async::Params::Positional(values))
                            .await
                            .map_err(|e| db_error(e, "the query"))?;
                        (
                            declared,
                            Rows::Bound {
                                result,
                                packet: Vec::new(),
                            },
                        )
                    }
                };
                let (schema, kinds) = schema_of(&rows.columns(), declared.as_ref())?;
                if let Some(s) = schema_tx.take() {
                    let _ = s.send(Ok(schema.clone()));
                }
                // A reader that goes away while the query is slow to produce is noticed by a
                // watcher, which stops the query (and so this loop): waiting on both for every
                // row would cost more than the row.
                let watcher = {
                    let (this, tx) = (this.clone(), tx.clone());
                    let id = conn_id.unwrap_or_default();
                    tokio::spawn(async move {
                        tx.closed().await;
                        this.cancel(id);
                    })
                };
                let _stop_watching = AbortOnDrop(watcher);
                let mut batcher =
                    decode::Batcher::new(schema, kinds.clone(), label, this.zero_dates);
                loop {
                    if tx.is_closed() {
                        return Ok(false);
                    }
                    let row = rows.next(&kinds).await?;
                    let end = row.is_none();
                    if let Some(row) = row {
                        batcher.push(row)?;
                    }
                    if batcher.len() == this.batch_rows || (end && !batcher.is_empty()) {
                        let batch = batcher.finish()?;
                        if tx.send(Ok(batch)).await.is_err() {
                            return Ok(false);
                        }
                    }
                    if end {
                        return Ok(true);
                    }
                }
            }
            .await;
            match result {
                Ok(true) => {}
                Ok(false) => conn_id.into_iter().for_each(|id| this.cancel(id)),
                Err(e) => match schema_tx.take() {
                    Some(s) => {
                        let _ = s.send(Err(e));
                    }
                    None => {
                        if tx.send(Err(e)).await.is_err() {
                            conn_id.into_iter().for_each(|id| this.cancel(id));
                        }
                    }
                },
            }
        });
        let schema = schema_rx
            .await
            .map_err(|_| Error::internal("the MySQL reader ended before its schema"))??;
        Ok((schema, ReceiverStream::new(rx).boxed()))
    }
}

/// Where a read's rows come from, each as the text protocol's row packet the batcher parses.
enum Rows<'c> {
    /// A table or query on our own streaming connection: the packets as they arrive.
    Text {
        wire: &'c mut wire::Wire,
        columns: Vec<mysql_async::Column>,
    },
    /// A query with bound parameters: binary-protocol rows, each written out as text (every
    /// value exactly: a FLOAT as its shortest round-trip digits).
    Bound {
        result: mysql_async::QueryResult<'c, 'static, mysql_async::BinaryProtocol>,
        packet: Vec<u8>,
    },
}

impl Rows<'_> {
    fn columns(&self) -> Vec<mysql_async::Column> {
        match self {
            Rows::Text { columns, .. } => columns.clone(),
            Rows::Bound { result, .. } => result.columns().map(|c| c.to_vec()).unwrap_or_default(),
        }
    }

    async fn next(&mut self, kinds: &[Kind]) -> Result<Option<&[u8]>> {
        match self {
            Rows::Text { wire, .. } => wire.row().await,
            Rows::Bound { result, packet } => {
                let row: Option<mysql_async::Row> =
                    result.next().await.map_err(|e| db_error(e, "reading"))?;
                let Some(row) = row else { return Ok(None) };
                packet.clear();
                for (value, kind) in row.unwrap().into_iter().zip(kinds) {
                    text_value(value, *kind, packet);
                }
                Ok(Some(packet.as_slice()))
            }
        }
    }
}

/// One binary-protocol value as the text protocol sends it: length-encoded text, or 0xFB for
/// NULL.
fn text_value(value: mysql_async::Value, kind: Kind, out: &mut Vec<u8>) {
    use mysql_async::Value;
    let text: Vec<u8> = match value {
        Value::NULL => {
            out.push(0xFB);
            return;
        }
        Value::Bytes(b) => b,
        Value::Int(i) => i.to_string().into_bytes(),
        Value::UInt(u) => u.to_string().into_bytes(),
        // Rust prints the shortest digits that read back as the same float.
        Value::Float(f) => f.to_string().into_bytes(),
        Value::Double(f) => f.to_string().into_bytes(),
        Value::Date(y, mo, d, h, mi, s, us) => match kind {
            Kind::Date => format!("{y:04}-{mo:02}-{d:02}"),
            _ => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"),
        }
        .into_bytes(),
        Value::Time(negative, days, h, mi, s, us) => {
            let sign = if negative { "-" } else { "" };
            let hours = days * 24 + u32::from(h);
            format!("{sign}{hours:02}:{mi:02}:{s:02}.{us:06}").into_bytes()
        }
    };
    let len = text.len() as u64;
    match len {
        0..=250 => out.push(len as u8),
        251..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(len as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&len.to_le_bytes());
        }
    }
    out.extend_from_slice(&text);
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The schema of a result: kinds from the wire, what the catalog adds for tables.
fn schema_of(
    columns: &[mysql_async::Column],
    declared: Option<&Vec<(String, Declared)>>,
) -> Result<(SchemaRef, Vec<Kind>)> {
    use mysql_async::consts::ColumnFlags;
    let mut fields = Vec::with_capacity(columns.len());
    let mut kinds = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let declared = declared.and_then(|d| d.get(i)).map(|(_, d)| d);
        let kind = match declared {
            Some(d) if d.data_type == "float" => Kind::Float, // read as DOUBLE, see above
            _ => types::kind_of(c)?,
        };
        let nullable = match declared {
            Some(d) => d.nullable,
            None => !c.flags().contains(ColumnFlags::NOT_NULL_FLAG),
        };
        let field = types::field(&c.name_str(), kind, nullable, declared);
        let (schema, table) = (c.schema_str(), c.org_table_str());
        fields.push(match declared {
            // A query's column: the table it is read from, where the server says.
            None => crate::connectors::with_origin(field, Some((&schema, &table))),
            Some(_) => field,
        });
        kinds.push(kind);
    }
    Ok((std::sync::Arc::new(Schema::new(fields)), kinds))
}
