//! Raft snapshots on disk: one file, replaced atomically (write, fsync, rename, fsync the
//! directory), so a crash leaves either the old snapshot or the new one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::raft::SnapshotMeta;

#[derive(Serialize, Deserialize)]
struct OnDisk {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    pub fn open(dir: &Path) -> std::io::Result<SnapshotStore> {
        std::fs::create_dir_all(dir)?;
        Ok(SnapshotStore {
            dir: dir.to_owned(),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("current.snapshot")
    }

    pub fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> std::io::Result<()> {
        let bytes = postcard::to_allocvec(&OnDisk {
            meta: meta.clone(),
            data: data.to_vec(),
        })
        .map_err(std::io::Error::other)?;
        let tmp = self.dir.join("current.snapshot.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.path())?;
        File::open(&self.dir)?.sync_all()
    }

    pub fn load(&self) -> std::io::Result<Option<(SnapshotMeta, Vec<u8>)>> {
        match std::fs::read(self.path()) {
            Ok(bytes) => {
                let d: OnDisk = postcard::from_bytes(&bytes).map_err(std::io::Error::other)?;
                Ok(Some((d.meta, d.data)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
