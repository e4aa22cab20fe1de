//! The replicated network configuration: `GET/POST /config` with RobustIRC's revision
//! header, refusals that change nothing, `unsplit editconfig`, and the logic's limits
//! taking effect from the configuration.

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use harness::{Http, PASSWORD, TestNode, tempdir, unsplit};

const REV: &str = "X-RobustIRC-Config-Revision";

async fn get(http: &Http) -> (u64, String) {
    let r = http.private_get("/config", "application/toml").await;
    assert_eq!(r.status, 200, "{r:?}");
    let rev = r.headers[REV].to_str().unwrap().parse().unwrap();
    (rev, r.body)
}

async fn post(http: &Http, revision: &str, toml: &str) -> harness::Reply {
    let auth = unsplit_host::network::basic_auth(PASSWORD);
    http.request(
        "POST",
        "/config",
        &[("Authorization", &auth), (REV, revision)],
        Bytes::from(toml.to_owned()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn revisions_refusals_editconfig_and_limits() {
    let _guard = harness::exclusive().await;
    let dir = tempdir();
    let node = TestNode::start_single(&dir.path().join("node"));
    let http = Http::new(&node).await;
    http.wait_ready().await;
    let (rev, toml) = get(&http).await;
    assert_eq!(rev, 1);
    assert!(toml.contains("FuelPerEntry"), "{toml}");

    // An edit of revision 1 becomes revision 2.
    let lean = toml.replace("FuelPerEntry = 2000000000", "FuelPerEntry = 30000000");
    let r = post(&http, "1", &lean).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.headers[REV], "2");
    // A second edit of revision 1 lost the race: refused, nothing changes.
    let r = post(&http, "1", &toml).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Revision mismatch"), "{r:?}");
    // Invalid documents: refused with the line and the reason.
    let r = post(&http, "2", "Network = \"x\"\nServerName = [\n").await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("line 2"), "{r:?}");
    let r = post(
        &http,
        "2",
        &lean.replace("MemoryMiB = 512", "MemoryMiB = 1"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Logic.MemoryMiB = 1 is outside"), "{r:?}");
    let r = post(
        &http,
        "2",
        &lean.replace("SessionExpiration = \"30m\"", "SessionExpiration = \"1ms\""),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("SessionExpiration"), "{r:?}");
    // The host's own keys too: line and reason.
    let r = post(
        &http,
        "2",
        &lean.replace(
            "PostMessageCooloff = \"500ms\"",
            "PostMessageCooloff = \"1m\"",
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .contains("line 6: PostMessageCooloff = \"1m\" is longer"),
        "{r:?}"
    );
    let r = post(&http, "two", &lean).await;
    assert_eq!(r.status, 400);
    assert_eq!(get(&http).await, (2, lean.clone()));

    // The lower fuel limit is in force: the looping fixture runs out of it at once.
    http.upload_and_activate(unsplit_irc_component::fixtures::LOOP)
        .await;
    let s = http.create_session().await;
    let mut stream = http.stream(&s, "0.0").await;
    assert_eq!(http.post(&s, "FIXTURE LOOP").await, 200);
    let notice = stream
        .lines_until("rejected", Duration::from_secs(20))
        .await
        .pop()
        .unwrap();
    assert!(notice.contains("OutOfFuel"), "{notice}");

    // editconfig: $EDITOR edits the file, the result is submitted as revision 3.
    let out = editconfig(
        &node,
        dir.path(),
        "sed -i 's/^Network = .*/Network = \"edited\"/' \"$1\"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("configuration revision 3 is active"),
        "{stdout}"
    );
    let (rev, now) = get(&http).await;
    assert_eq!(rev, 3);
    assert!(now.contains("Network = \"edited\""), "{now}");
    // An edit that breaks the document is refused and changes nothing.
    // (The first line, so it is a top-level key, not one of the [Logic] table.)
    let out = editconfig(
        &node,
        dir.path(),
        "sed -i '1i MaxChannels = \"many\"' \"$1\"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("line 1") && stderr.contains("expected u32"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(get(&http).await.0, 3);
}

/// Runs `unsplit editconfig` against `node` with an `$EDITOR` that runs `script` (the
/// file to edit is `$1`).
fn editconfig(node: &TestNode, dir: &Path, script: &str) -> std::process::Output {
    let editor = dir.join("editor.sh");
    std::fs::write(&editor, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    Command::new(unsplit())
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .args(["editconfig", "--network", &node.addr])
        .args(["--network-password", PASSWORD])
        .arg("--tls-ca-file")
        .arg(node.ca())
        .output()
        .unwrap()
}
