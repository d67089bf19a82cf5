//! The commit of a prefix write, as a record that any gateway can finish.
//!
//! Publishing a prefix is several steps (each staged part renamed into place, the description
//! rewritten, the manifest last, an overwrite's old parts removed), and no store makes them one.
//! A gateway killed between two of them would leave new parts beside old ones. So the commit
//! first puts one object, `_committing-STAGE.json` in the prefix, saying every step; from then
//! on the write is committed. The writer takes the steps and removes the record; if it dies
//! first, any gateway that comes upon the record once its deadline (in its stage name,
//! [`stages`]) has passed takes the steps again. Each step can be taken twice: a rename whose
//! source is gone and whose target is there was done, a put of the same bytes changes nothing,
//! and a removal of what is gone is done.

use std::time::{Duration, SystemTime};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::description::{self, Rendered};
use super::{Bucket, Key, staged};
use crate::connectors::stages::{self, Live};
use crate::error::{Context, Error, Result};

const RECORD: &str = "_committing-";
const RECORD_EXTENSION: &str = ".json";

/// The longest a commit's steps are given before another gateway may take them again.
const DEADLINE: Duration = Duration::from_secs(300);

/// The biggest commit record read back: a record names each part twice (a million parts of
/// 100-byte names is 200 MB, so this bounds parts at hundreds of thousands).
const MOST_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// What a prefix write's commit does, in order.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Record {
    /// The prefix, as its key.
    prefix: String,
    /// Each staged part, and its published name.
    moves: Vec<(String, String)>,
    /// What becomes of the description once the parts are in place.
    describe: Describe,
    /// The old parts an overwrite removes, last.
    remove: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Describe {
    Keep,
    /// Parts no records format holds (JSON lines) replace a records directory.
    Remove,
    Write(Rendered),
}

impl Record {
    pub(super) fn new(
        key: &Key,
        moves: &[(Path, Path)],
        describe: Describe,
        remove: &[Path],
    ) -> Self {
        Self {
            prefix: key.as_str().to_string(),
            moves: moves
                .iter()
                .map(|(from, to)| (from.to_string(), to.to_string()))
                .collect(),
            describe,
            remove: remove.iter().map(ToString::to_string).collect(),
        }
    }

    /// Commit: the record put (on failure, the staged parts are removed and the prefix is as
    /// it was), then its steps taken. A step failing before the description is written
    /// undoes the commit; one failing later leaves the record, for a sweep to finish.
    pub(super) async fn commit(self, bucket: &Bucket, key: &Key, run: &str) -> Result<()> {
        let deadline = SystemTime::now() + DEADLINE.min(bucket.write_ttl);
        let stage = stages::name(deadline, run, 0, 0);
        let _live = Live::hold(&stage);
        let path = description::in_dir(key, &format!("{RECORD}{stage}{RECORD_EXTENSION}"))?;
        let bytes = serde_json::to_vec(&self).internal("writing a commit record")?;
        if let Err(e) = bucket.store.put(&path, bytes.into()).await {
            staged::delete_all(&*bucket.store, self.staged()).await;
            return Err(Error::internal(format!(
                "cannot commit {}: {e}",
                bucket.label(key)
            )));
        }
        self.finish(bucket, &path).await
    }

    /// Take every step, then remove the record at `path`.
    async fn finish(&self, bucket: &Bucket, path: &Path) -> Result<()> {
        let store = &*bucket.store;
        let key = self.key()?;
        let label = bucket.label(&key);
        for (done, (from, to)) in self.moves.iter().enumerate() {
            let (from, to) = (Path::from(from.as_str()), Path::from(to.as_str()));
            if let Err(e) = rename_once(store, &from, &to).await {
                self.undo(bucket, path, done).await;
                return Err(Error::internal(format!(
                    "cannot publish the parts of {label}: {e}"
                )));
            }
        }
        match &self.describe {
            Describe::Write(rendered) => {
                if let Err(e) = rendered.write(bucket, &key, None).await {
                    self.undo(bucket, path, self.moves.len()).await;
                    return Err(e);
                }
            }
            Describe::Remove => description::remove_all(bucket, &key).await,
            Describe::Keep => {}
        }
        for old in &self.remove {
            match store.delete(&Path::from(old.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(Error::internal(format!(
                        "cannot remove the old part {old} of {label} (a sweep will): {e}"
                    )));
                }
            }
        }
        staged::delete_all(store, vec![path.clone()]).await;
        Ok(())
    }

    /// The commit undone: the first `published` parts removed from their places, the others
    /// from their staging, and the record.
    async fn undo(&self, bucket: &Bucket, path: &Path, published: usize) {
        let (done, staged) = self.moves.split_at(published.min(self.moves.len()));
        let paths = done
            .iter()
            .map(|(_, to)| to)
            .chain(staged.iter().map(|(from, _)| from))
            .map(|p| Path::from(p.as_str()))
            .chain([path.clone()]);
        staged::delete_all(&*bucket.store, paths.collect()).await;
    }

    /// The staged parts it publishes.
    fn staged(&self) -> Vec<Path> {
        let staged = self.moves.iter().map(|(from, _)| from.as_str());
        staged.map(Path::from).collect()
    }

    /// The prefix's key.
    fn key(&self) -> Result<Key> {
        let mut parts: Vec<String> = self.prefix.split('/').map(String::from).collect();
        if let Some(last) = parts.last_mut() {
            last.push('/');
        }
        Key::parse(&parts)
    }

    /// Whether every path the record names is in its own prefix: a record is read back from
    /// the bucket, and its steps must not reach past the prefix it sits in.
    fn confined(&self, path: &Path) -> bool {
        let Some(dir) = path.as_ref().rsplit_once('/').map(|(dir, _)| dir) else {
            return false;
        };
        let inside = |p: &String| {
            p.strip_prefix(dir)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| !rest.is_empty())
        };
        self.prefix == dir
            && self
                .moves
                .iter()
                .all(|(from, to)| inside(from) && inside(to))
            && self.remove.iter().all(inside)
    }
}

/// Rename `from` to `to`, or find it done.
async fn rename_once(store: &dyn ObjectStore, from: &Path, to: &Path) -> object_store::Result<()> {
    match store.rename(from, to).await {
        Err(object_store::Error::NotFound { .. }) if store.head(to).await.is_ok() => Ok(()),
        other => other,
    }
}

/// Whether `path` is a commit record, and its deadline passed before `before` and it is not
/// this process's.
pub(super) fn is_due(path: &Path, before: SystemTime) -> bool {
    let stage = path
        .filename()
        .and_then(|f| f.strip_prefix(RECORD))
        .and_then(|f| f.strip_suffix(RECORD_EXTENSION));
    stage.is_some_and(|s| stages::is_stale(s, '-', before) && !Live::holds(s))
}

/// Whether `path` is a commit record at all.
pub(super) fn is_record(path: &Path) -> bool {
    path.filename()
        .is_some_and(|f| f.starts_with(RECORD) && f.ends_with(RECORD_EXTENSION))
}

/// The staged parts the commit record at `path` publishes: a sweep leaves them to it.
pub(super) async fn staged_by(bucket: &Bucket, path: &Path) -> Result<Vec<Path>> {
    Ok(read(bucket, path).await?.staged())
}

/// Take the steps of the record at `path` again: its writer did not finish them.
pub(super) async fn finish(bucket: &Bucket, path: &Path) -> Result<()> {
    let record = read(bucket, path).await?;
    tracing::info!(record = %path, "finishing a commit its gateway did not");
    record.finish(bucket, path).await
}

async fn read(bucket: &Bucket, path: &Path) -> Result<Record> {
    let got = bucket
        .store
        .get(path)
        .await
        .internal(format!("reading the commit record {}", bucket.label(path)))?;
    if got.meta.size > MOST_RECORD_BYTES {
        return Err(Error::internal(format!(
            "the commit record {} is over {MOST_RECORD_BYTES} bytes",
            bucket.label(path)
        )));
    }
    let bytes = got
        .bytes()
        .await
        .internal(format!("reading the commit record {}", bucket.label(path)))?;
    let record: Record = serde_json::from_slice(&bytes).internal(format!(
        "the commit record {} is not one",
        bucket.label(path)
    ))?;
    if !record.confined(path) {
        return Err(Error::internal(format!(
            "the commit record {} names objects outside its prefix; left alone",
            bucket.label(path)
        )));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::Setup;

    fn bucket(ttl: Duration) -> Bucket {
        let options = toml::from_str("url = \"memory://\"").unwrap();
        let setup = Setup {
            base_dir: "/tmp".into(),
            batch_rows: 100,
            hold: Duration::from_secs(60),
            write_ttl: ttl,
        };
        Bucket::open("t", &options, &setup).unwrap()
    }

    async fn put(bucket: &Bucket, path: &str, text: &str) {
        let bytes = text.as_bytes().to_vec();
        bucket.store.put(&path.into(), bytes.into()).await.unwrap();
    }

    async fn listing(bucket: &Bucket) -> Vec<String> {
        use futures::TryStreamExt;
        let mut all: Vec<String> = bucket
            .store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        all.sort();
        all
    }

    /// A record for `out/`: two staged parts to publish and an old one to remove.
    fn record(key: &Key) -> Record {
        let moves = [
            ("out/_staging-s-00000.csv", "out/part-n-00000.csv"),
            ("out/_staging-s-00001.csv", "out/part-n-00001.csv"),
        ]
        .map(|(from, to)| (Path::from(from), Path::from(to)));
        Record::new(
            key,
            &moves,
            Describe::Keep,
            &[Path::from("out/part-o-00000.csv")],
        )
    }

    #[tokio::test]
    async fn a_commit_its_writer_left_half_way_is_finished_by_a_sweep() {
        let bucket = bucket(Duration::from_secs(1));
        let key = Key::parse(&["out/".to_string()]).unwrap();
        put(&bucket, "out/part-o-00000.csv", "old").await;
        put(&bucket, "out/_staging-s-00000.csv", "a").await;
        put(&bucket, "out/_staging-s-00001.csv", "b").await;
        // The writer put its record and renamed one part, then was killed.
        let stage = stages::name(SystemTime::now(), "run", 0, 0);
        let path =
            description::in_dir(&key, &format!("{RECORD}{stage}{RECORD_EXTENSION}")).unwrap();
        let bytes = serde_json::to_vec(&record(&key)).unwrap();
        bucket.store.put(&path, bytes.into()).await.unwrap();
        let store = &*bucket.store;
        rename_once(
            store,
            &"out/_staging-s-00000.csv".into(),
            &"out/part-n-00000.csv".into(),
        )
        .await
        .unwrap();
        assert!(is_record(&path));
        assert!(!is_due(&path, SystemTime::now() - Duration::from_secs(5)));
        assert!(is_due(&path, SystemTime::now() + Duration::from_secs(1)));
        let parts = staged_by(&bucket, &path).await.unwrap();
        assert_eq!(parts.len(), 2);
        finish(&bucket, &path).await.unwrap();
        assert_eq!(
            listing(&bucket).await,
            ["out/part-n-00000.csv", "out/part-n-00001.csv"]
        );
        // Taken again (a second gateway read the record before the first removed it): the
        // same prefix.
        record(&key).finish(&bucket, &path).await.unwrap();
        assert_eq!(
            listing(&bucket).await,
            ["out/part-n-00000.csv", "out/part-n-00001.csv"]
        );
    }

    #[tokio::test]
    async fn a_part_gone_undoes_the_commit_and_a_record_reaching_past_its_prefix_is_refused() {
        let bucket = bucket(Duration::from_secs(1));
        let key = Key::parse(&["out/".to_string()]).unwrap();
        put(&bucket, "out/part-o-00000.csv", "old").await;
        put(&bucket, "out/_staging-s-00000.csv", "a").await;
        let path = description::in_dir(&key, "_committing-x.json").unwrap();
        let err = record(&key).finish(&bucket, &path).await.unwrap_err();
        assert!(err.message.contains("cannot publish"), "{err}");
        assert_eq!(listing(&bucket).await, ["out/part-o-00000.csv"]);

        let mut forged = record(&key);
        forged.remove = vec!["elsewhere/precious.csv".into()];
        put(&bucket, "elsewhere/precious.csv", "keep").await;
        let bytes = serde_json::to_vec(&forged).unwrap();
        bucket.store.put(&path, bytes.into()).await.unwrap();
        let err = finish(&bucket, &path).await.unwrap_err();
        assert!(err.message.contains("outside its prefix"), "{err}");
        assert!(
            listing(&bucket)
                .await
                .contains(&"elsewhere/precious.csv".to_string())
        );
    }
}
