//! The LOCAL INFILE handler: a load's connection serves the server its own stream, under one
//! generated name, once; any other name the server asks for is refused and logged.

use std::sync::{Arc, Mutex};

use mysql_async::prelude::GlobalHandler;
use mysql_async::{Conn, Opts, OptsBuilder};

use super::Mysql;
use super::load::random_name;
use crate::error::Result;

/// Serves `LOAD DATA LOCAL INFILE` the stream of one load, under one generated name. Any other
/// name the server asks for is refused and logged: a server cannot read the gateway's files.
pub struct StreamHandler {
    pub(super) name: String,
    data: Mutex<Option<mysql_async::InfileData>>,
}

impl StreamHandler {
    pub fn new(name: String) -> Arc<Self> {
        Arc::new(Self {
            name,
            data: Mutex::new(None),
        })
    }

    pub(super) fn offer(&self, data: mysql_async::InfileData) {
        *self.data.lock().expect("infile slot") = Some(data);
    }
}

/// The handler as the connection options hold it.
#[derive(Clone)]
pub struct SharedHandler(pub Arc<StreamHandler>);

impl GlobalHandler for SharedHandler {
    fn handle(
        &self,
        file_name: &[u8],
    ) -> futures::future::BoxFuture<
        'static,
        std::result::Result<mysql_async::InfileData, mysql_async::LocalInfileError>,
    > {
        let handler = &self.0;
        let served = (file_name == handler.name.as_bytes())
            .then(|| handler.data.lock().expect("infile slot").take())
            .flatten();
        match served {
            Some(data) => Box::pin(async move { Ok(data) }),
            None => {
                let asked = String::from_utf8_lossy(file_name).into_owned();
                tracing::warn!(
                    asked = %asked,
                    "refused a LOCAL INFILE request: this connection serves only its own load's stream"
                );
                Box::pin(async move {
                    Err(mysql_async::LocalInfileError::PathIsNotInTheWhiteList(
                        asked,
                    ))
                })
            }
        }
    }
}

/// A connection whose LOCAL INFILE requests are served by its own handler.
pub(super) async fn connection(mysql: &Mysql) -> Result<(Conn, Arc<StreamHandler>)> {
    let handler = StreamHandler::new(random_name("mover-stream-"));
    let with_handler = |opts: Opts| -> Opts {
        OptsBuilder::from_opts(opts)
            .local_infile_handler(Some(SharedHandler(handler.clone())))
            .into()
    };
    Ok((mysql.connect_with(with_handler).await?, handler))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::StreamExt;

    #[tokio::test]
    async fn the_handler_serves_its_own_stream_once_and_refuses_other_files() {
        let handler = StreamHandler::new("mover-stream-abc".into());
        let shared = SharedHandler(handler.clone());
        // A forged request from the server, before and after the load offered its stream.
        assert!(shared.handle(b"/etc/passwd").await.is_err());
        handler.offer(futures::stream::iter(vec![Ok(Bytes::from_static(b"1\n"))]).boxed());
        assert!(shared.handle(b"/etc/passwd").await.is_err());
        assert!(shared.handle(b"mover-stream-ab").await.is_err());
        let mut data = shared.handle(b"mover-stream-abc").await.unwrap();
        assert_eq!(
            data.next().await.unwrap().unwrap(),
            Bytes::from_static(b"1\n")
        );
        // Served once: a second request for the same name gets nothing.
        assert!(shared.handle(b"mover-stream-abc").await.is_err());
    }
}
