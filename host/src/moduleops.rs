//! Operator tools for the module lifecycle: `unsplit module upload|activate|rollback|
//! list|rejected|shadow`, fetching a live network's recording for `unsplit canary`, and
//! reading and replacing the network configuration (`unsplit editconfig`).
//! They talk to the private API (see `admin`); writes go to any node, which forwards them
//! to the leader.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::canary::Recording;
use crate::ops::{Ops, OpsError};
use crate::raft::Request;

fn failed(what: &str, addr: &str, status: u16, body: &[u8]) -> OpsError {
    OpsError::Failed(format!(
        "{what} refused by {addr} (HTTP {status}): {}",
        String::from_utf8_lossy(body).trim()
    ))
}

fn parse(body: &[u8]) -> Result<Value, OpsError> {
    serde_json::from_slice(body).map_err(|e| OpsError::Failed(format!("unexpected answer: {e}")))
}

fn which(module: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "Module": module }).to_string())
}

impl Ops {
    /// Uploads a component; answers its hash, name and version.
    pub async fn upload_module(&self, bytes: Vec<u8>) -> Result<Value, OpsError> {
        let (addr, status, _, body) = self
            .any(
                "POST",
                "/module",
                Bytes::from(bytes),
                Duration::from_secs(120),
            )
            .await?;
        match status {
            200 => parse(&body),
            _ => Err(failed("the upload", &addr, status, &body)),
        }
    }

    /// Activates a module (hash, unique hash prefix, version, or `previous`).
    pub async fn activate_module(&self, module: &str) -> Result<Value, OpsError> {
        let (addr, status, _, body) = self
            .any(
                "POST",
                "/module/activate",
                which(module),
                Duration::from_secs(120),
            )
            .await?;
        match status {
            200 => parse(&body),
            _ => Err(failed("the activation", &addr, status, &body)),
        }
    }

    pub async fn get_json(&self, path: &str) -> Result<Value, OpsError> {
        let (addr, status, _, body) = self
            .any("GET", path, Bytes::new(), Duration::from_secs(10))
            .await?;
        match status {
            200 => parse(&body),
            _ => Err(failed(path, &addr, status, &body)),
        }
    }

    /// The network configuration and its revision.
    pub async fn get_config(&self) -> Result<(u64, String), OpsError> {
        let (addr, status, headers, body) = self
            .any("GET", "/config", Bytes::new(), Duration::from_secs(10))
            .await?;
        if status != 200 {
            return Err(failed("GET /config", &addr, status, &body));
        }
        let revision = header_u64(&headers, crate::admin::CONFIG_REVISION)
            .ok_or_else(|| OpsError::Failed(format!("{addr} sent no revision")))?;
        Ok((revision, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Replaces the configuration edited from `revision`; answers the new revision.
    pub async fn set_config(&self, revision: u64, toml: String) -> Result<u64, OpsError> {
        let req_body = Bytes::from(toml);
        let mut errors = Vec::new();
        for addr in self.servers() {
            let result = self
                .request_with(
                    "POST",
                    addr,
                    "/config",
                    &[(crate::admin::CONFIG_REVISION, revision.to_string())],
                    req_body.clone(),
                    Duration::from_secs(30),
                )
                .await;
            match result {
                Ok((200, headers, _)) => {
                    return header_u64(&headers, crate::admin::CONFIG_REVISION)
                        .ok_or_else(|| OpsError::Failed(format!("{addr} sent no revision")));
                }
                Ok((status, _, body)) => {
                    return Err(OpsError::Failed(format!(
                        "refused (HTTP {status}): {}",
                        String::from_utf8_lossy(&body).trim()
                    )));
                }
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        Err(OpsError::Failed(format!(
            "no node answered: {}",
            errors.join("; ")
        )))
    }

    /// Starts (`module`) or stops (`off`) the shadow on one node.
    pub async fn shadow(&self, node: &str, module: &str) -> Result<String, OpsError> {
        let (status, _, body) = self
            .request_bytes(
                "POST",
                node,
                "/shadow",
                which(module),
                Duration::from_secs(10),
            )
            .await
            .map_err(|e| OpsError::Failed(format!("{node}: {e}")))?;
        match status {
            200..=299 => Ok(String::from_utf8_lossy(&body).trim().to_owned()),
            _ => Err(failed("the shadow", node, status, &body)),
        }
    }

    pub async fn shadow_status(&self, node: &str) -> Result<Value, OpsError> {
        let (status, _, body) = self
            .request_bytes(
                "GET",
                node,
                "/shadow",
                Bytes::new(),
                Duration::from_secs(10),
            )
            .await
            .map_err(|e| OpsError::Failed(format!("{node}: {e}")))?;
        match status {
            200 => parse(&body),
            _ => Err(failed("/shadow", node, status, &body)),
        }
    }

    /// Downloads a recording from one node: its snapshot and the committed log after it.
    /// Retried from scratch when the node took a new snapshot and purged the log midway.
    pub async fn recording(&self, progress: &mut dyn FnMut(&str)) -> Result<Recording, OpsError> {
        let mut last_error = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                progress(&format!("retrying the download: {last_error}"));
            }
            for addr in self.servers() {
                match self.recording_from(addr, progress).await {
                    Ok(r) => return Ok(r),
                    Err(e) => last_error = format!("{addr}: {e}"),
                }
            }
        }
        Err(OpsError::Failed(format!(
            "downloading the recording: {last_error}"
        )))
    }

    async fn recording_from(
        &self,
        addr: &str,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Recording, String> {
        let limit = Duration::from_secs(120);
        let (status, headers, snapshot) = self
            .request_bytes("GET", addr, "/snapshot", Bytes::new(), limit)
            .await?;
        let (snapshot, mut from) = match status {
            200 => {
                let index = header_u64(&headers, "X-Snapshot-Index").unwrap_or(0);
                (Some(snapshot), index + 1)
            }
            404 => (None, 0),
            _ => return Err(format!("GET /snapshot: HTTP {status}")),
        };
        let mut entries: Vec<(u64, Request)> = Vec::new();
        loop {
            let (status, headers, body) = self
                .request_bytes(
                    "GET",
                    addr,
                    &format!("/log?from={from}"),
                    Bytes::new(),
                    limit,
                )
                .await?;
            if status != 200 {
                return Err(format!(
                    "GET /log: HTTP {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                ));
            }
            let page: Vec<(u64, Request)> =
                postcard::from_bytes(&body).map_err(|e| format!("GET /log: {e}"))?;
            entries.extend(page);
            let next = header_u64(&headers, "X-Next").ok_or("GET /log: no X-Next")?;
            let last = header_u64(&headers, "X-Last-Index").unwrap_or(0);
            progress(&format!(
                "downloaded {} entries from {addr} (up to index {})",
                entries.len(),
                next.saturating_sub(1)
            ));
            if next > last || next <= from {
                break;
            }
            from = next;
        }
        Recording::new(snapshot.as_deref(), entries).map_err(|e| e.to_string())
    }
}

fn header_u64(headers: &http::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

/// `unsplit module list`: one line per module, the active one marked.
pub fn render_modules(v: &Value) -> String {
    let mut out = format!(
        "{:<2} {:<16} {:<28} {:>9} {:>10} {:>10}\n",
        "", "hash", "version", "size", "uploaded", "activated"
    );
    let empty = Vec::new();
    for m in v["Modules"].as_array().unwrap_or(&empty) {
        let hash = m["Hash"].as_str().unwrap_or("");
        let mark = if m["Active"].as_bool() == Some(true) {
            "*"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:<2} {:<16} {:<28} {:>9} {:>10} {:>10}\n",
            mark,
            hash.get(..16).unwrap_or(hash),
            format!(
                "{} {}",
                m["Name"].as_str().unwrap_or(""),
                m["Version"].as_str().unwrap_or("")
            ),
            m["Size"].as_u64().unwrap_or(0),
            m["UploadedIndex"].as_u64().unwrap_or(0),
            m["LastActivatedIndex"]
                .as_u64()
                .map(|i| i.to_string())
                .unwrap_or_else(|| "-".into()),
        ));
    }
    match v["Active"].as_object() {
        Some(a) => out.push_str(&format!(
            "active: {} {} since index {}\n",
            a.get("version").and_then(Value::as_str).unwrap_or(""),
            a.get("hash").and_then(Value::as_str).unwrap_or(""),
            a.get("index").and_then(Value::as_u64).unwrap_or(0)
        )),
        None => out.push_str("active: the module built into the nodes (nothing activated yet)\n"),
    }
    if let Some(p) = v["Previous"].as_object() {
        out.push_str(&format!(
            "rollback target: {} {}\n",
            p.get("version").and_then(Value::as_str).unwrap_or(""),
            p.get("hash").and_then(Value::as_str).unwrap_or("")
        ));
    }
    for (name, p) in v["Plugins"].as_object().into_iter().flatten() {
        let field = |which: &str, key: &str| p[which][key].as_str().unwrap_or("").to_owned();
        out.push_str(&format!(
            "plugin {name}: {} {} since index {}{}\n",
            field("Active", "version"),
            field("Active", "hash"),
            p["Active"]["index"].as_u64().unwrap_or(0),
            match p["Previous"].is_object() {
                true => format!(
                    " (rollback target {} {})",
                    field("Previous", "version"),
                    field("Previous", "hash").get(..16).unwrap_or("")
                ),
                false => String::new(),
            }
        ));
    }
    out
}

/// `unsplit module rejected`: the entries the logic trapped on.
pub fn render_rejected(v: &Value) -> String {
    let empty = Vec::new();
    let entries = v["Entries"].as_array().unwrap_or(&empty);
    let mut out = format!(
        "{} entries rejected since the network began ({} kept)\n",
        v["Total"].as_u64().unwrap_or(0),
        entries.len()
    );
    if let Some(n) = v["PluginFailures"].as_u64().filter(|&n| n > 0) {
        out.push_str(&format!(
            "{n} calls of services plugins trapped (the plugin was reset, the entry went on)\n"
        ));
    }
    for e in entries {
        let plugin = match e["plugin"].as_str() {
            Some(p) => format!(" [plugin {p} trapped; the entry went on]"),
            None => String::new(),
        };
        out.push_str(&format!(
            "#{} session {} {} ({}): {:?}{plugin}\n",
            e["index"].as_u64().unwrap_or(0),
            e["session"].as_u64().unwrap_or(0),
            e["kind"].as_str().unwrap_or(""),
            e["reason"].as_str().unwrap_or(""),
            e["input"].as_str().unwrap_or("")
        ));
    }
    out
}
