//! Modules as replicated state: the uploaded components (by content hash) — the IRC logic
//! and the services plugins — which one of each kind is active since which log index,
//! and the node-local cache of compiled modules.
//!
//! The bytes of every known module are part of the replicated state (and so of every
//! snapshot): a node that joins or restores later can run the right version at the right
//! index without ever having seen the upload entry. Compiling is node-local and happens
//! off the apply path: an upload entry starts a background compile; the activation entry
//! waits for it only if it is not done yet.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::Engine;

use crate::runtime::{
    self, Compiled, Limits, LogicInstance, LogicModule, PluginInstance, PluginModule,
};

/// Modules kept at most. Uploading one more forgets the oldest that is neither active nor
/// the one before it for its kind (so a rollback target is always kept).
pub const MAX_MODULES: usize = 16;

/// What a module is: the IRC logic, or the services plugin of that name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ModuleKind {
    Logic,
    Plugin(String),
}

impl std::fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModuleKind::Logic => f.write_str("the IRC logic"),
            ModuleKind::Plugin(name) => write!(f, "plugin {name}"),
        }
    }
}

/// Largest component accepted for upload.
pub const MAX_MODULE_BYTES: usize = 32 << 20;

/// Bytes of a component per raft entry: an entry must replicate (as JSON, base64) well
/// within a heartbeat interval even on a busy machine, or the leader's append times out
/// again and again.
pub const UPLOAD_CHUNK: usize = 64 << 10;

/// Uploads in progress kept at most (a new one forgets the oldest).
pub const MAX_UPLOADING: usize = 4;

/// Component bytes, shared (cloning the replicated state for a snapshot copies no bytes).
/// Serialised as base64 in JSON (raft RPCs), as raw bytes in postcard (log, snapshots).
#[derive(Clone, PartialEq, Eq)]
pub struct ModuleBytes(pub Arc<[u8]>);

impl std::fmt::Debug for ModuleBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModuleBytes({} bytes)", self.0.len())
    }
}

impl ModuleBytes {
    pub fn new(bytes: &[u8]) -> ModuleBytes {
        ModuleBytes(Arc::from(bytes))
    }

    /// SHA-256 of the bytes, hex: the module's identity.
    pub fn hash(&self) -> String {
        hash_of(&self.0)
    }
}

pub fn hash_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Serialize for ModuleBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            use base64::Engine as _;
            s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for ModuleBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            use base64::Engine as _;
            let text = String::deserialize(d)?;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(|b| ModuleBytes(Arc::from(b)))
                .map_err(serde::de::Error::custom)
        } else {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = ModuleBytes;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("component bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ModuleBytes, E> {
                    Ok(ModuleBytes::new(v))
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ModuleBytes, E> {
                    Ok(ModuleBytes(Arc::from(v)))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }
}

/// One uploaded module, as every node records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRecord {
    pub hash: String,
    pub kind: ModuleKind,
    /// From the module's own `info()` (checked by the node that took the upload).
    pub name: String,
    pub version: String,
    pub snapshot_format: u32,
    pub size: usize,
    pub uploaded_index: u64,
    pub uploaded_ms: u64,
    pub bytes: ModuleBytes,
}

/// One switch of the active module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    pub hash: String,
    pub kind: ModuleKind,
    pub version: String,
    /// The log index of the activation entry: entries after it run the new module.
    pub index: u64,
    pub time_ms: u64,
}

/// The module part of the replicated state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modules {
    pub known: BTreeMap<String, ModuleRecord>,
    /// Every activation, oldest first (the last one of a kind is its active module).
    /// Without a logic activation the node runs the logic built into its binary (only
    /// before the first activation, which a new network commits as its first entries).
    pub history: Vec<Activation>,
    /// Uploads in progress: hash → the chunks so far, and when the first came.
    pub uploading: BTreeMap<String, Uploading>,
}

/// A component arriving in chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploading {
    pub bytes: Vec<u8>,
    pub started_ms: u64,
}

impl Modules {
    /// The active IRC logic.
    pub fn active(&self) -> Option<&Activation> {
        self.active_of(&ModuleKind::Logic)
    }

    /// The IRC logic active before the current one (the rollback target).
    pub fn previous(&self) -> Option<&Activation> {
        self.previous_of(&ModuleKind::Logic)
    }

    /// Records that the known module `hash` runs from `index` on (no-op when unknown).
    pub fn activate(&mut self, hash: &str, index: u64, time_ms: u64) {
        if let Some(r) = self.known.get(hash) {
            let activation = Activation {
                hash: hash.to_owned(),
                kind: r.kind.clone(),
                version: r.version.clone(),
                index,
                time_ms,
            };
            self.history.push(activation);
        }
    }

    pub fn active_of(&self, kind: &ModuleKind) -> Option<&Activation> {
        self.history.iter().rev().find(|a| a.kind == *kind)
    }

    pub fn previous_of(&self, kind: &ModuleKind) -> Option<&Activation> {
        let active = self.active_of(kind)?;
        self.history
            .iter()
            .rev()
            .find(|a| a.kind == *kind && a.hash != active.hash)
    }

    /// The active plugins: name → activation.
    pub fn active_plugins(&self) -> BTreeMap<&str, &Activation> {
        let mut active = BTreeMap::new();
        for a in &self.history {
            if let ModuleKind::Plugin(name) = &a.kind {
                active.insert(name.as_str(), a);
            }
        }
        active
    }

    /// Whether `hash` is active (as the logic or as a plugin).
    pub fn is_active(&self, hash: &str) -> bool {
        self.active().is_some_and(|a| a.hash == hash)
            || self.active_plugins().values().any(|a| a.hash == hash)
    }

    /// Finds a known module by full hash, unique hash prefix (at least 8 digits), version,
    /// or one of the words `previous` / `active` (the IRC logic's), `previous:<plugin>` /
    /// `active:<plugin>` (a plugin's).
    pub fn resolve(&self, what: &str) -> Result<&ModuleRecord, String> {
        let (word, kind) = match what.split_once(':') {
            Some((word, plugin)) => (word, ModuleKind::Plugin(plugin.to_owned())),
            None => (what, ModuleKind::Logic),
        };
        let hash = match word {
            "previous" => self
                .previous_of(&kind)
                .map(|a| a.hash.clone())
                .ok_or(format!(
                    "no module of {kind} was active before the current one"
                ))?,
            "active" => self
                .active_of(&kind)
                .map(|a| a.hash.clone())
                .ok_or(format!("no module of {kind} has been activated yet"))?,
            _ => {
                let by_hash: Vec<&ModuleRecord> = if what.len() >= 8 {
                    self.known
                        .values()
                        .filter(|m| m.hash.starts_with(&what.to_ascii_lowercase()))
                        .collect()
                } else {
                    Vec::new()
                };
                let by_version: Vec<&ModuleRecord> =
                    self.known.values().filter(|m| m.version == what).collect();
                match (by_hash.as_slice(), by_version.as_slice()) {
                    ([m], _) => m.hash.clone(),
                    ([], [m]) => m.hash.clone(),
                    ([], []) => return Err(format!("no module {what:?} has been uploaded")),
                    _ => {
                        return Err(format!(
                            "{what:?} names more than one module; use the full hash"
                        ));
                    }
                }
            }
        };
        self.known
            .get(&hash)
            .ok_or_else(|| format!("module {hash} is no longer kept"))
    }

    /// Adds a chunk to the upload of `hash`: offset 0 starts it (again), any other offset
    /// must continue it exactly. Deterministic, like everything here.
    pub fn add_chunk(
        &mut self,
        hash: &str,
        offset: u64,
        data: &[u8],
        now: u64,
    ) -> Result<(), String> {
        if offset == 0 {
            self.uploading.insert(
                hash.to_owned(),
                Uploading {
                    bytes: Vec::new(),
                    started_ms: now,
                },
            );
            while self.uploading.len() > MAX_UPLOADING {
                let oldest = self
                    .uploading
                    .iter()
                    .min_by_key(|(_, u)| u.started_ms)
                    .map(|(h, _)| h.clone());
                if let Some(h) = oldest {
                    self.uploading.remove(&h);
                }
            }
        }
        let upload = self
            .uploading
            .get_mut(hash)
            .ok_or_else(|| format!("no upload of {hash} is in progress"))?;
        if upload.bytes.len() as u64 != offset {
            return Err(format!(
                "the upload of {hash} is at byte {}, not {offset}",
                upload.bytes.len()
            ));
        }
        if upload.bytes.len() + data.len() > MAX_MODULE_BYTES {
            self.uploading.remove(hash);
            return Err(format!("components are at most {MAX_MODULE_BYTES} bytes"));
        }
        upload.bytes.extend_from_slice(data);
        Ok(())
    }

    /// The bytes of a finished upload, checked against its hash.
    pub fn finish_upload(&mut self, hash: &str) -> Result<ModuleBytes, String> {
        let upload = self
            .uploading
            .remove(hash)
            .ok_or_else(|| format!("no upload of {hash} is in progress"))?;
        let bytes = ModuleBytes::new(&upload.bytes);
        if bytes.hash() != hash {
            return Err(format!("the chunks of {hash} do not add up to it"));
        }
        Ok(bytes)
    }

    /// Forgets uploads that did not finish within `ttl_ms` (entry time).
    pub fn expire_uploads(&mut self, now: u64, ttl_ms: u64) {
        self.uploading
            .retain(|_, u| u.started_ms.saturating_add(ttl_ms) > now);
    }

    /// Records an upload (idempotent for a known hash); forgets the oldest module beyond
    /// [`MAX_MODULES`] that is neither active nor a rollback target.
    pub fn add(&mut self, record: ModuleRecord) {
        if self.known.contains_key(&record.hash) {
            return;
        }
        self.known.insert(record.hash.clone(), record);
        while self.known.len() > MAX_MODULES {
            let kinds: std::collections::BTreeSet<&ModuleKind> =
                self.history.iter().map(|a| &a.kind).collect();
            let keep: Vec<String> = kinds
                .into_iter()
                .flat_map(|k| [self.active_of(k), self.previous_of(k)])
                .flatten()
                .map(|a| a.hash.clone())
                .collect();
            let oldest = self
                .known
                .values()
                .filter(|m| !keep.contains(&m.hash))
                .min_by_key(|m| m.uploaded_index)
                .map(|m| m.hash.clone());
            match oldest {
                Some(h) => {
                    self.known.remove(&h);
                }
                None => break,
            }
        }
    }
}

type Slot = Arc<(Mutex<Option<Result<Compiled, String>>>, Condvar)>;

/// What a module says about itself, as checked by the node that takes an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub kind: ModuleKind,
    pub name: String,
    pub version: String,
    pub snapshot_format: u32,
}

/// Compiled modules of this node, by hash. Compiles in the background; [`ModuleCache::get`]
/// waits for a compile in progress or compiles on the spot.
pub struct ModuleCache {
    engine: Engine,
    slots: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for ModuleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleCache").finish_non_exhaustive()
    }
}

impl ModuleCache {
    pub fn new(engine: Engine) -> Arc<ModuleCache> {
        Arc::new(ModuleCache {
            engine,
            slots: Mutex::new(HashMap::new()),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Adds an already compiled module (the one built into the binary).
    pub fn insert(&self, module: Compiled) {
        let hash = module.hash().to_owned();
        let slot: Slot = Arc::new((Mutex::new(Some(Ok(module))), Condvar::new()));
        self.lock().insert(hash, slot);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot of `hash`, and whether the caller must compile it.
    fn slot(&self, hash: &str) -> (Slot, bool) {
        let mut slots = self.lock();
        match slots.get(hash) {
            Some(s) => (s.clone(), false),
            None => {
                let s: Slot = Arc::new((Mutex::new(None), Condvar::new()));
                slots.insert(hash.to_owned(), s.clone());
                (s, true)
            }
        }
    }

    fn compile_into(&self, slot: &Slot, bytes: &[u8]) {
        // A panic inside the compiler must not leave the slot empty: an activation
        // waiting for it would wait forever.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime::compile(&self.engine, bytes).map_err(|e| e.to_string())
        }))
        .unwrap_or_else(|_| Err("the compiler failed on this module".into()));
        let (lock, cond) = &**slot;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        cond.notify_all();
    }

    /// Starts compiling in the background (no-op when known).
    pub fn prepare(self: &Arc<Self>, bytes: ModuleBytes) {
        let (slot, mine) = self.slot(&bytes.hash());
        if mine {
            let cache = self.clone();
            std::thread::spawn(move || cache.compile_into(&slot, &bytes.0));
        }
    }

    /// The compiled IRC logic; waits for a background compile or compiles now.
    pub fn get(&self, bytes: &ModuleBytes) -> Result<Arc<LogicModule>, String> {
        match self.compiled(bytes)? {
            Compiled::Logic(m) => Ok(m),
            Compiled::Plugin(_) => Err("it is a services plugin, not the IRC logic".into()),
        }
    }

    /// The compiled services plugin (see [`ModuleCache::get`]).
    pub fn get_plugin(&self, bytes: &ModuleBytes) -> Result<Arc<PluginModule>, String> {
        match self.compiled(bytes)? {
            Compiled::Plugin(m) => Ok(m),
            Compiled::Logic(_) => Err("it is the IRC logic, not a services plugin".into()),
        }
    }

    /// The compiled module, whatever it is.
    pub fn compiled(&self, bytes: &ModuleBytes) -> Result<Compiled, String> {
        let (slot, mine) = self.slot(&bytes.hash());
        if mine {
            self.compile_into(&slot, &bytes.0);
        }
        let (lock, cond) = &*slot;
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        while guard.is_none() {
            guard = cond.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        guard.clone().unwrap_or_else(|| Err("not compiled".into()))
    }

    /// Compiles and checks a module before it is proposed: valid, supported contract,
    /// imports only `unsplit:*`, it starts within the network's limits (`limits` for the
    /// logic, `plugin_limits` for a plugin) and `info()` answers (a plugin's with a usable
    /// name). The compiled module is kept.
    pub fn check(
        &self,
        bytes: &ModuleBytes,
        limits: Limits,
        plugin_limits: Limits,
    ) -> Result<(Compiled, Checked), String> {
        let compiled = self.compiled(bytes)?;
        let failed = |e: runtime::RuntimeError| format!("the module's info() failed: {e}");
        let checked = match &compiled {
            Compiled::Logic(m) => {
                let info = LogicInstance::new(m.clone(), limits)
                    .and_then(|mut i| i.info())
                    .map_err(failed)?;
                Checked {
                    kind: ModuleKind::Logic,
                    name: info.name,
                    version: info.version,
                    snapshot_format: info.snapshot_format,
                }
            }
            Compiled::Plugin(m) => {
                let info = PluginInstance::new(m.clone(), plugin_limits)
                    .and_then(|mut i| i.info())
                    .map_err(failed)?;
                let name_ok = !info.name.is_empty()
                    && info.name.len() <= 32
                    && info
                        .name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !name_ok {
                    return Err(format!(
                        "plugin name {:?}: use 1-32 lower case letters, digits and -",
                        info.name
                    ));
                }
                Checked {
                    kind: ModuleKind::Plugin(info.name.clone()),
                    name: info.name,
                    version: info.version,
                    snapshot_format: info.snapshot_format,
                }
            }
        };
        Ok((compiled, checked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u8, index: u64) -> ModuleRecord {
        let bytes = ModuleBytes::new(&[n]);
        ModuleRecord {
            hash: bytes.hash(),
            kind: ModuleKind::Logic,
            name: "m".into(),
            version: format!("1.0.{n}"),
            snapshot_format: 1,
            size: 1,
            uploaded_index: index,
            uploaded_ms: 0,
            bytes,
        }
    }

    fn activate(m: &mut Modules, r: &ModuleRecord, index: u64) {
        m.history.push(Activation {
            hash: r.hash.clone(),
            kind: r.kind.clone(),
            version: r.version.clone(),
            index,
            time_ms: 0,
        });
    }

    #[test]
    fn resolves_by_hash_prefix_version_and_words() {
        let mut m = Modules::default();
        let (a, b) = (record(1, 1), record(2, 2));
        m.add(a.clone());
        m.add(b.clone());
        assert_eq!(m.resolve(&a.hash[..10]).unwrap().hash, a.hash);
        assert_eq!(m.resolve("1.0.2").unwrap().hash, b.hash);
        assert!(m.resolve("1.0.3").unwrap_err().contains("no module"));
        assert!(m.resolve("previous").is_err());
        activate(&mut m, &a, 3);
        activate(&mut m, &b, 4);
        assert_eq!(m.resolve("active").unwrap().hash, b.hash);
        assert_eq!(m.resolve("previous").unwrap().hash, a.hash);
        activate(&mut m, &a, 5);
        assert_eq!(m.resolve("previous").unwrap().hash, b.hash);
    }

    #[test]
    fn keeps_at_most_max_modules_but_never_the_active_or_previous() {
        let mut m = Modules::default();
        let first = record(0, 0);
        let second = record(1, 1);
        m.add(first.clone());
        m.add(second.clone());
        activate(&mut m, &first, 2);
        activate(&mut m, &second, 3);
        for n in 2..20u8 {
            m.add(record(n, n as u64 + 10));
        }
        assert_eq!(m.known.len(), MAX_MODULES);
        assert!(m.known.contains_key(&first.hash));
        assert!(m.known.contains_key(&second.hash));
        assert!(m.known.contains_key(&record(19, 29).hash));
    }

    #[test]
    fn uploads_arrive_in_order_and_must_add_up() {
        let mut m = Modules::default();
        let bytes = b"0123456789".to_vec();
        let hash = ModuleBytes::new(&bytes).hash();
        m.add_chunk(&hash, 0, &bytes[..4], 1).unwrap();
        assert!(m.add_chunk(&hash, 3, &bytes[3..], 2).is_err());
        m.add_chunk(&hash, 4, &bytes[4..], 2).unwrap();
        assert_eq!(m.finish_upload(&hash).unwrap().0.as_ref(), &bytes[..]);
        assert!(m.finish_upload(&hash).is_err(), "consumed");
        m.add_chunk(&hash, 0, b"wrong", 3).unwrap();
        assert!(
            m.finish_upload(&hash)
                .unwrap_err()
                .contains("do not add up")
        );
        assert!(m.add_chunk("other", 5, b"x", 4).is_err());
        m.add_chunk("old", 0, b"x", 4).unwrap();
        m.expire_uploads(100, 50);
        assert!(m.uploading.is_empty());
    }

    #[test]
    fn bytes_round_trip_in_json_and_postcard() {
        let b = ModuleBytes::new(b"\0asm\x01");
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, "\"AGFzbQE=\"");
        assert_eq!(serde_json::from_str::<ModuleBytes>(&json).unwrap(), b);
        let pc = postcard::to_allocvec(&b).unwrap();
        assert_eq!(pc.len(), 6);
        assert_eq!(postcard::from_bytes::<ModuleBytes>(&pc).unwrap(), b);
    }
}
