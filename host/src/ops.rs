//! Operator tools that talk to a network's private API: `status` (a one-screen health
//! summary), `removepeer` and `rollingrestart`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::network::{HttpsClient, basic_auth, https_client};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Failed(String),
}

/// Which network, and how to reach its private API.
#[derive(Debug, Clone)]
pub struct Target {
    /// Some of the network's nodes (`host:port`); the others are found through them.
    pub servers: Vec<String>,
    pub password: String,
    pub ca: PathBuf,
}

impl Target {
    /// The network a localnet directory describes.
    pub fn from_localnet(dir: &std::path::Path) -> Result<Target, OpsError> {
        let net = crate::localnet::read(dir).map_err(|e| OpsError::Failed(e.to_string()))?;
        Ok(Target {
            servers: net.nodes.iter().map(|n| n.addr.clone()).collect(),
            password: net.password,
            ca: net.ca_cert,
        })
    }
}

/// One node's view, from its JSON status.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    pub addr: String,
    /// `None` when the node did not answer.
    pub state: Option<String>,
    pub leader: String,
    pub peers: Vec<String>,
    pub applied: u64,
    pub last_contact: f64,
    pub exe_hash: String,
}

pub struct Ops {
    client: HttpsClient,
    auth: String,
    target: Target,
}

impl Ops {
    pub fn new(target: Target) -> Result<Ops, OpsError> {
        let client = https_client(crate::tls::client_config(&target.ca)?);
        Ok(Ops {
            client,
            auth: basic_auth(&target.password),
            target,
        })
    }

    async fn request(
        &self,
        method: &str,
        addr: &str,
        path: &str,
        body: String,
    ) -> Result<(u16, String), String> {
        // Membership changes may wait behind another one in flight (the node retries
        // for 15 s); reads answer at once.
        let limit = if method == "GET" {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(30)
        };
        let (status, _, body) = self
            .request_bytes(method, addr, path, Bytes::from(body), limit)
            .await?;
        Ok((status, String::from_utf8_lossy(&body).trim().to_owned()))
    }

    /// One private API request with a time limit for the answer and one for the body.
    pub async fn request_bytes(
        &self,
        method: &str,
        addr: &str,
        path: &str,
        body: Bytes,
        limit: Duration,
    ) -> Result<(u16, http::HeaderMap, Bytes), String> {
        self.request_with(method, addr, path, &[], body, limit)
            .await
    }

    /// [`Ops::request_bytes`] with extra request headers.
    pub async fn request_with(
        &self,
        method: &str,
        addr: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
        limit: Duration,
    ) -> Result<(u16, http::HeaderMap, Bytes), String> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("https://{addr}{path}"))
            .header(http::header::AUTHORIZATION, &self.auth)
            .header(http::header::ACCEPT, "application/json");
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(limit, self.client.request(req))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = tokio::time::timeout(
            limit.max(Duration::from_secs(5)),
            resp.into_body().collect(),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?
        .to_bytes();
        Ok((status, headers, body))
    }

    /// The first of the target's servers that answers (whatever the HTTP status):
    /// writes are forwarded to the leader by the node.
    pub async fn any(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        limit: Duration,
    ) -> Result<(String, u16, http::HeaderMap, Bytes), OpsError> {
        let mut errors = Vec::new();
        for addr in &self.target.servers {
            match self
                .request_bytes(method, addr, path, body.clone(), limit)
                .await
            {
                Ok((status, headers, body)) => return Ok((addr.clone(), status, headers, body)),
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        Err(OpsError::Failed(format!(
            "no node answered: {}",
            errors.join("; ")
        )))
    }

    pub fn servers(&self) -> &[String] {
        &self.target.servers
    }

    pub async fn status(&self, addr: &str) -> NodeStatus {
        let mut s = NodeStatus {
            addr: addr.to_owned(),
            ..NodeStatus::default()
        };
        if let Ok((200, body)) = self.request("GET", addr, "/", String::new()).await
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
        {
            s.state = v["State"].as_str().map(str::to_owned);
            s.leader = v["Leader"].as_str().unwrap_or("").to_owned();
            s.peers = v["Peers"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            s.applied = v["AppliedIndex"].as_u64().unwrap_or(0);
            s.last_contact = v["LastContact"].as_f64().unwrap_or(-1.0);
            s.exe_hash = v["ExecutableHash"].as_str().unwrap_or("").to_owned();
        }
        s
    }

    /// Every member's status: the given servers plus every peer any of them names.
    pub async fn statuses(&self) -> Vec<NodeStatus> {
        let mut addrs: Vec<String> = self.target.servers.clone();
        let mut out: Vec<NodeStatus> = Vec::new();
        let mut i = 0;
        while i < addrs.len() {
            let s = self.status(&addrs[i]).await;
            for p in &s.peers {
                if !addrs.contains(p) {
                    addrs.push(p.clone());
                }
            }
            out.push(s);
            i += 1;
        }
        // A given server that is down and that no live member lists is not a member
        // (any more): leave it out.
        let listed: Vec<String> = out
            .iter()
            .filter(|s| s.state.is_some())
            .flat_map(|s| s.peers.clone())
            .collect();
        out.retain(|s| s.state.is_some() || listed.contains(&s.addr) || listed.is_empty());
        out.sort_by(|a, b| a.addr.cmp(&b.addr));
        out
    }

    pub async fn removepeer(&self, addr: &str) -> Result<String, OpsError> {
        let body = serde_json::json!({ "Addr": addr }).to_string();
        let mut last = String::new();
        for server in self.target.servers.iter().filter(|s| s.as_str() != addr) {
            match self.request("POST", server, "/part", body.clone()).await {
                Ok((200, text)) => return Ok(text),
                Ok((code, text)) if code < 500 => {
                    return Err(OpsError::Failed(format!("{server}: {text}")));
                }
                Ok((_, text)) | Err(text) => last = format!("{server}: {text}"),
            }
        }
        Err(OpsError::Failed(format!(
            "no node could remove {addr} (last: {last})"
        )))
    }

    /// Waits (bounded) until the network is healthy; returns the statuses.
    pub async fn wait_healthy(&self, limit: Duration) -> Result<Vec<NodeStatus>, OpsError> {
        let deadline = Instant::now() + limit;
        loop {
            let statuses = self.statuses().await;
            match healthy(&statuses) {
                Ok(()) => return Ok(statuses),
                Err(why) if Instant::now() > deadline => {
                    return Err(OpsError::Failed(format!(
                        "the network is not healthy: {why}"
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Restarts every node in turn (followers first, the leader last): wait until the
    /// network is healthy, ask the node to quit (its supervisor starts it again), wait
    /// until it is back and has re-applied what it had, then the next. `progress` gets a
    /// line per step.
    pub async fn rolling_restart(
        &self,
        limit: Duration,
        mut progress: impl FnMut(String),
    ) -> Result<(), OpsError> {
        let statuses = self.wait_healthy(limit).await?;
        let leader = statuses
            .first()
            .map(|s| s.leader.clone())
            .unwrap_or_default();
        let mut order: Vec<String> = statuses
            .iter()
            .map(|s| s.addr.clone())
            .filter(|a| *a != leader)
            .collect();
        order.push(leader);
        for addr in order {
            self.wait_healthy(limit).await?;
            let before = self.status(&addr).await;
            progress(format!(
                "{addr}: asking to quit (applied {}, executable {})",
                before.applied,
                short(&before.exe_hash)
            ));
            self.request("POST", &addr, "/quit", String::new())
                .await
                .map_err(|e| OpsError::Failed(format!("{addr}: {e}")))?;
            let deadline = Instant::now() + limit;
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let now = self.status(&addr).await;
                if now.state.is_some() && now.applied >= before.applied && !now.exe_hash.is_empty()
                {
                    progress(format!(
                        "{addr}: back as {} (applied {}, executable {})",
                        now.state.unwrap_or_default(),
                        now.applied,
                        short(&now.exe_hash)
                    ));
                    break;
                }
                if Instant::now() > deadline {
                    return Err(OpsError::Failed(format!(
                        "{addr} did not come back within {limit:?} (is a supervisor restarting it?)"
                    )));
                }
            }
        }
        self.wait_healthy(limit).await?;
        Ok(())
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// RobustIRC's notion of healthy: every node answers, all agree on one leader, every
/// node is leader or follower, and every follower heard from the leader within 2 s.
pub fn healthy(statuses: &[NodeStatus]) -> Result<(), String> {
    let Some(first) = statuses.first() else {
        return Err("no nodes".into());
    };
    for s in statuses {
        match s.state.as_deref() {
            None => return Err(format!("{} does not answer", s.addr)),
            Some("Leader" | "Follower") => {}
            Some(other) => return Err(format!("{} is {other}", s.addr)),
        }
        if s.leader.is_empty() || s.leader != first.leader {
            return Err(format!(
                "{} sees leader {:?}, {} sees {:?}",
                s.addr, s.leader, first.addr, first.leader
            ));
        }
        if s.addr != s.leader && !(0.0..2.0).contains(&s.last_contact) {
            return Err(format!(
                "{} last heard from the leader {:.1} s ago",
                s.addr, s.last_contact
            ));
        }
    }
    Ok(())
}

/// The one-screen summary `unsplit status` prints.
pub fn render(statuses: &[NodeStatus]) -> String {
    let mut out = format!(
        "{:<22} {:<10} {:>10} {:>13} {:<12} {}\n",
        "node", "state", "applied", "last contact", "executable", "leader"
    );
    for s in statuses {
        let contact = if s.addr == s.leader {
            "-".to_owned()
        } else if s.last_contact < 0.0 {
            "never".to_owned()
        } else {
            format!("{:.1} s", s.last_contact)
        };
        out.push_str(&format!(
            "{:<22} {:<10} {:>10} {:>13} {:<12} {}\n",
            s.addr,
            s.state.as_deref().unwrap_or("DOWN"),
            s.applied,
            contact,
            short(&s.exe_hash),
            s.leader
        ));
    }
    match healthy(statuses) {
        Ok(()) => out.push_str("network healthy\n"),
        Err(why) => out.push_str(&format!("network NOT healthy: {why}\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(addr: &str, state: &str, leader: &str, contact: f64) -> NodeStatus {
        NodeStatus {
            addr: addr.into(),
            state: Some(state.into()),
            leader: leader.into(),
            last_contact: contact,
            ..NodeStatus::default()
        }
    }

    #[test]
    fn health_rules() {
        let ok = [
            node("a:1", "Leader", "a:1", 0.0),
            node("b:1", "Follower", "a:1", 0.3),
        ];
        assert_eq!(healthy(&ok), Ok(()));
        let split = [
            node("a:1", "Leader", "a:1", 0.0),
            node("b:1", "Follower", "b:1", 0.3),
        ];
        assert!(healthy(&split).unwrap_err().contains("sees leader"));
        let stale = [
            node("a:1", "Leader", "a:1", 0.0),
            node("b:1", "Follower", "a:1", 9.0),
        ];
        assert!(healthy(&stale).unwrap_err().contains("9.0 s"));
        let down = [
            node("a:1", "Leader", "a:1", 0.0),
            NodeStatus {
                addr: "b:1".into(),
                ..NodeStatus::default()
            },
        ];
        assert!(healthy(&down).unwrap_err().contains("does not answer"));
        assert!(render(&ok).contains("network healthy"));
    }
}
