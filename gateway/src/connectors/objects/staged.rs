//! The objects a bucket write has published before it commits (the parts of a prefix, the files
//! of a records directory), held so that they are removed however the write ends: on an error,
//! and also when the write's future is dropped (see [`crate::connectors::undo`]).

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::connectors::undo;

pub(super) struct Staged {
    store: Arc<dyn ObjectStore>,
    objects: Vec<Path>,
}

impl Staged {
    pub(super) fn new(store: &Arc<dyn ObjectStore>) -> Self {
        Self {
            store: Arc::clone(store),
            objects: Vec::new(),
        }
    }

    /// `path` now exists and is this write's to remove until it commits.
    pub(super) fn add(&mut self, path: Path) {
        self.objects.push(path);
    }

    pub(super) fn len(&self) -> usize {
        self.objects.len()
    }

    /// The write is committed: what it published stays.
    pub(super) fn commit(mut self) -> Vec<Path> {
        std::mem::take(&mut self.objects)
    }

    /// Remove what was published, now (the error path, which can wait for it).
    pub(super) async fn undo(mut self) {
        delete_all(&*self.store, std::mem::take(&mut self.objects)).await;
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.objects.is_empty() {
            return;
        }
        let (store, objects) = (Arc::clone(&self.store), std::mem::take(&mut self.objects));
        undo::spawn("objects of a dropped bucket write", async move {
            delete_all(&*store, objects).await;
        });
    }
}

pub(super) async fn delete_all(store: &dyn ObjectStore, objects: Vec<Path>) {
    for path in objects {
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, object = %path, "could not remove an object of a failed write");
            }
        }
    }
}
