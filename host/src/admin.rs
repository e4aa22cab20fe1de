//! The private API's module lifecycle and canary endpoints (behind the same basic auth
//! as the rest of the private API):
//!
//! - `POST /module` (body: component bytes, the IRC logic or a services plugin): check,
//!   compile, commit the upload (in chunks of [`UPLOAD_CHUNK`] bytes, then the upload);
//! - `POST /module/activate` (`{"Module": hash|version|"previous"|"previous:<plugin>"}`):
//!   commit a switch (of the logic, or of the plugin of that module's name);
//! - `GET /modules`: known modules, the active logic and plugins since which index, the
//!   history;
//! - `GET /module/<hash>`: a module's bytes;
//! - `GET /rejected`: the entries the logic trapped on (newest last);
//! - `GET|POST /shadow` (`{"Module": hash|version|"off"}`): this node's shadow module;
//! - `GET /snapshot`, `GET /log?from=N`: the recording the canary replays;
//! - `GET /config`, `POST /config`: the network configuration (TOML) with its revision in
//!   `X-RobustIRC-Config-Revision`, as RobustIRC.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use hyper::body::Incoming;
use openraft::storage::{RaftLogReader, RaftLogStorage};
use serde::Deserialize;
use serde_json::json;

use crate::api::{Api, ApiBody, full, json, read_body, text, unexpected};
use crate::modules::{Checked, MAX_MODULE_BYTES, ModuleBytes, UPLOAD_CHUNK};
use crate::raft::{Op, Response};
use crate::sm::ShadowCommand;

/// The header carrying the configuration's revision (RobustIRC's name).
pub const CONFIG_REVISION: &str = "X-RobustIRC-Config-Revision";

/// Entries per `GET /log` page at most.
pub const LOG_PAGE: u64 = 5000;

#[derive(Deserialize)]
struct Which {
    #[serde(rename = "Module")]
    module: String,
}

async fn read_which(req: http::Request<Incoming>) -> Result<String, http::Response<ApiBody>> {
    let body = read_body(req.into_body(), 4096).await?;
    serde_json::from_slice::<Which>(&body)
        .map(|w| w.module.trim().to_owned())
        .map_err(|e| {
            text(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"Module\": \"<hash, version or previous>\"}}: {e}"),
            )
        })
}

fn with_revision(mut r: http::Response<ApiBody>, revision: u64) -> http::Response<ApiBody> {
    if let Ok(v) = HeaderValue::from_str(&revision.to_string()) {
        r.headers_mut().insert(CONFIG_REVISION, v);
    }
    r
}

impl Api {
    pub(crate) fn get_config(&self) -> http::Response<ApiBody> {
        let st = self.shared.read();
        with_revision(
            full(
                StatusCode::OK,
                "application/toml; charset=utf-8",
                st.config_toml.clone(),
            ),
            st.config_revision,
        )
    }

    /// Replaces the configuration: the body is the whole TOML document, the header the
    /// revision it was edited from. Refused with 400 and the reason (revision mismatch,
    /// invalid TOML or values, with line and column); nothing changes then.
    pub(crate) async fn post_config(
        &self,
        req: http::Request<Incoming>,
    ) -> http::Response<ApiBody> {
        let revision = match req
            .headers()
            .get(CONFIG_REVISION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().parse::<u64>())
        {
            Some(Ok(r)) => r,
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("{CONFIG_REVISION} must name the revision the edit started from"),
                );
            }
        };
        let body = match read_body(req.into_body(), 1 << 20).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Ok(toml) = String::from_utf8(body.to_vec()) else {
            return text(StatusCode::BAD_REQUEST, "the configuration is not UTF-8");
        };
        let op = Op::Config {
            toml,
            revision: revision.saturating_add(1),
        };
        match self.propose(op).await {
            Ok(Response::Applied) => with_revision(
                text(
                    StatusCode::OK,
                    format!("configuration revision {}", revision + 1),
                ),
                revision + 1,
            ),
            Ok(Response::ConfigRefused(why)) => text(StatusCode::BAD_REQUEST, why),
            Ok(other) => unexpected(&other),
            Err(e) => e.response(),
        }
    }

    pub(crate) async fn upload_module(
        &self,
        req: http::Request<Incoming>,
    ) -> http::Response<ApiBody> {
        let body = match read_body(req.into_body(), MAX_MODULE_BYTES).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let bytes = ModuleBytes::new(&body);
        let info = match self.check_module(&bytes).await {
            Ok(Ok(info)) => info,
            Ok(Err(why)) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "refused: this is not a usable unsplit component (IRC logic or services plugin): {why}"
                    ),
                );
            }
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        let size = bytes.0.len();
        match self.commit_upload(&bytes, &info).await {
            Ok(Response::ModuleRefused(why)) => text(StatusCode::CONFLICT, why),
            Ok(Response::ModuleUploaded(h)) => json(&json!({
                "Hash": h,
                "Kind": info.kind,
                "Name": info.name,
                "Version": info.version,
                "SnapshotFormat": info.snapshot_format,
                "Size": size,
            })),
            Ok(other) => unexpected(&other),
            Err(e) => e.response(),
        }
    }

    /// Checks a component against the network's limits (`ModuleCache::check`), on a
    /// blocking thread: it compiles. `Err`: the check did not finish.
    pub(crate) async fn check_module(
        &self,
        bytes: &ModuleBytes,
    ) -> Result<Result<Checked, String>, tokio::task::JoinError> {
        let cache = self.cache.clone();
        let bytes = bytes.clone();
        let (limits, plugin_limits) = {
            let st = self.shared.read();
            (st.config().limits(), st.config().plugin_limits())
        };
        tokio::task::spawn_blocking(move || {
            cache
                .check(&bytes, limits, plugin_limits)
                .map(|(_, checked)| checked)
        })
        .await
    }

    /// Commits a checked component: its chunks, then the upload itself (one module at a
    /// time on this leader, so chunks of two uploads never interleave).
    pub(crate) async fn commit_upload(
        &self,
        bytes: &ModuleBytes,
        checked: &Checked,
    ) -> Result<Response, crate::api::ProposeError> {
        let _one_at_a_time = self.upload_lock.lock().await;
        let hash = bytes.hash();
        for (i, chunk) in bytes.0.chunks(UPLOAD_CHUNK).enumerate() {
            let op = Op::ModuleChunk {
                hash: hash.clone(),
                offset: (i * UPLOAD_CHUNK) as u64,
                data: ModuleBytes::new(chunk),
            };
            match self.propose(op).await? {
                Response::Applied => {}
                other => return Ok(other),
            }
        }
        self.propose(Op::ModuleUpload {
            hash,
            kind: checked.kind.clone(),
            name: checked.name.clone(),
            version: checked.version.clone(),
            snapshot_format: checked.snapshot_format,
        })
        .await
    }

    pub(crate) async fn activate_module(
        &self,
        req: http::Request<Incoming>,
    ) -> http::Response<ApiBody> {
        let which = match read_which(req).await {
            Ok(w) => w,
            Err(r) => return r,
        };
        let (hash, version, bytes) = {
            let st = self.shared.read();
            match st.modules.resolve(&which) {
                Ok(m) if st.modules.is_active(&m.hash) => {
                    return text(
                        StatusCode::CONFLICT,
                        format!("module {} ({}) is already active", m.hash, m.version),
                    );
                }
                Ok(m) => (m.hash.clone(), m.version.clone(), m.bytes.clone()),
                Err(e) => return text(StatusCode::NOT_FOUND, e),
            }
        };
        // Every node started compiling at the upload; wait until this one is done, so
        // the switch itself does not include a compile (the apply loop would stall).
        let cache = self.cache.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || cache.compiled(&bytes)).await {
            return text(
                StatusCode::CONFLICT,
                format!("module {hash} does not compile: {e}"),
            );
        }
        match self
            .propose(Op::ModuleActivate { hash: hash.clone() })
            .await
        {
            Ok(Response::ModuleActivated(h)) => {
                let index = self
                    .shared
                    .read()
                    .modules
                    .history
                    .iter()
                    .rev()
                    .find(|a| a.hash == h)
                    .map(|a| a.index)
                    .unwrap_or(0);
                json(&json!({ "Hash": h, "Version": version, "Index": index }))
            }
            Ok(Response::ModuleRefused(why)) => text(StatusCode::CONFLICT, why),
            Ok(other) => unexpected(&other),
            Err(e) => e.response(),
        }
    }

    pub(crate) fn list_modules(&self) -> http::Response<ApiBody> {
        let st = self.shared.read();
        let m = &st.modules;
        let list: Vec<_> = m
            .known
            .values()
            .map(|r| {
                let since = m
                    .history
                    .iter()
                    .rev()
                    .find(|a| a.hash == r.hash)
                    .map(|a| a.index);
                json!({
                    "Hash": r.hash,
                    "Kind": r.kind,
                    "Name": r.name,
                    "Version": r.version,
                    "SnapshotFormat": r.snapshot_format,
                    "Size": r.size,
                    "UploadedIndex": r.uploaded_index,
                    "UploadedMs": r.uploaded_ms,
                    "Active": m.is_active(&r.hash),
                    "LastActivatedIndex": since,
                })
            })
            .collect();
        let plugins: serde_json::Map<String, serde_json::Value> = m
            .active_plugins()
            .into_iter()
            .map(|(name, a)| {
                let previous = m.previous_of(&a.kind);
                (
                    name.to_owned(),
                    json!({ "Active": a, "Previous": previous }),
                )
            })
            .collect();
        json(&json!({
            "Active": m.active(),
            "Previous": m.previous(),
            "Plugins": plugins,
            "Modules": list,
            "History": m.history,
        }))
    }

    pub(crate) fn download_module(&self, hash: &str) -> http::Response<ApiBody> {
        let st = self.shared.read();
        match st.modules.resolve(hash) {
            Ok(r) => full(
                StatusCode::OK,
                "application/wasm",
                Bytes::copy_from_slice(&r.bytes.0),
            ),
            Err(e) => text(StatusCode::NOT_FOUND, e),
        }
    }

    pub(crate) fn rejected(&self) -> http::Response<ApiBody> {
        let st = self.shared.read();
        json(&json!({
            "Total": st.rejected,
            "PluginFailures": st.plugin_failures,
            "Entries": st.rejected_log,
        }))
    }

    pub(crate) async fn steer_shadow(
        &self,
        req: http::Request<Incoming>,
    ) -> http::Response<ApiBody> {
        let which = match read_which(req).await {
            Ok(w) => w,
            Err(r) => return r,
        };
        let command = if which == "off" {
            ShadowCommand::Stop
        } else {
            match self.shared.read().modules.resolve(&which) {
                Ok(m) => ShadowCommand::Start(m.hash.clone()),
                Err(e) => return text(StatusCode::NOT_FOUND, e),
            }
        };
        *self
            .shared
            .shadow_command
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(command.clone());
        text(
            StatusCode::ACCEPTED,
            match command {
                ShadowCommand::Stop => "the shadow stops before the next entry".to_owned(),
                ShadowCommand::Start(h) => format!(
                    "module {h} runs as this node's shadow from the next entry on; see GET /shadow"
                ),
            },
        )
    }

    /// The current snapshot file (`SnapshotData`), with its index in `X-Snapshot-Index`.
    pub(crate) async fn download_snapshot(&self) -> http::Response<ApiBody> {
        let store = self.snapshots.clone();
        match tokio::task::spawn_blocking(move || store.load()).await {
            Ok(Ok(Some((meta, data)))) => {
                let mut r = full(StatusCode::OK, "application/octet-stream", data);
                let index = meta.last_log_id.map(|l| l.index).unwrap_or(0);
                if let Ok(v) = HeaderValue::from_str(&index.to_string()) {
                    r.headers_mut().insert("X-Snapshot-Index", v);
                }
                r
            }
            Ok(Ok(None)) => text(StatusCode::NOT_FOUND, "this node has no snapshot yet"),
            Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }

    /// Committed request entries from `from` on (postcard `Vec<(u64, Request)>`), at most
    /// [`LOG_PAGE`] log indexes; `X-Next` is where the next page starts and
    /// `X-Last-Index` the last committed index.
    pub(crate) async fn download_log(&self, query: &str) -> http::Response<ApiBody> {
        let from: u64 = match query
            .split('&')
            .find_map(|kv| kv.strip_prefix("from="))
            .map(str::parse)
        {
            Some(Ok(n)) => n,
            _ => return text(StatusCode::BAD_REQUEST, "expected ?from=<index>"),
        };
        let committed = self.shared.read().applied_index();
        let mut log = self.log.clone();
        let first = match log.get_log_state().await {
            Ok(s) => s.last_purged_log_id.map(|l| l.index + 1).unwrap_or(0),
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        if from < first {
            return text(
                StatusCode::GONE,
                format!(
                    "entries before {first} are purged (a newer snapshot covers them): fetch GET /snapshot again"
                ),
            );
        }
        let to = (from + LOG_PAGE).min(committed + 1);
        let entries = if from < to {
            match log.try_get_log_entries(from..to).await {
                Ok(chunk) => crate::canary::normal_entries(chunk),
                Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        } else {
            Vec::new()
        };
        let body = match postcard::to_allocvec(&entries) {
            Ok(b) => b,
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        let mut r = full(StatusCode::OK, "application/octet-stream", body);
        for (name, value) in [("X-Next", to.max(from)), ("X-Last-Index", committed)] {
            if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
                r.headers_mut().insert(name, v);
            }
        }
        r
    }
}
