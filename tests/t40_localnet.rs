//! `unsplit localnet --detach` starts a three-node network a person can chat on,
//! describes it in localnet.json, trusts its bridge, and `--stop` stops everything it
//! lists.

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use harness::{Http, IrcClient, free_port, tempdir, unsplit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localnet_starts_describes_and_stops() {
    let tmp = tempdir();
    let dir = tmp.path().join("localnet");
    let irc = format!("127.0.0.1:{}", free_port());
    let socks = format!("127.0.0.1:{}", free_port());
    let out = Command::new(unsplit())
        .args([
            "localnet",
            "--detach",
            "--irc-listen",
            &irc,
            "--socks-listen",
            &socks,
            "--dir",
        ])
        .arg(&dir)
        .output()
        .expect("run unsplit localnet");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("irssi -c 127.0.0.1 -p"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("localnet.json")).expect("localnet.json"))
            .expect("JSON");
    assert_eq!(json["network"], "localnet");
    assert_eq!(json["bridge"]["irc"], irc.as_str());
    assert_eq!(json["bridge"]["socks"], socks.as_str());
    assert!(std::path::Path::new(json["ca_cert"].as_str().unwrap()).exists());
    assert!(json["password"].as_str().unwrap().len() >= 16);
    let nodes = json["nodes"].as_array().unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["node1", "node2", "node3"]);
    let pids: Vec<u64> = std::iter::once(json["bridge"]["pid"].as_u64().unwrap())
        .chain(nodes.iter().map(|n| n["pid"].as_u64().unwrap()))
        .collect();

    // The localnet's bridge is a trusted bridge: its secret is in the configuration and in
    // a bridge-auth file only the owner may read.
    let mode = std::fs::metadata(dir.join("bridge-auth"))
        .expect("bridge-auth")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "bridge-auth mode {mode:o}");
    let secret = std::fs::read_to_string(dir.join("bridge-secret")).expect("bridge-secret");
    let node1 = Http::for_address(
        nodes[0]["addr"].as_str().unwrap(),
        std::path::Path::new(json["ca_cert"].as_str().unwrap()),
    )
    .with_password(json["password"].as_str().unwrap());
    let config = node1.private_get("/config", "application/toml").await;
    assert!(
        config
            .body
            .contains(&format!("{:?} = \"localnet bridge\"", secret.trim())),
        "{config:?}"
    );

    let mut client = IrcClient::connect(&irc).await;
    client.register("visitor").await;
    client.send("JOIN #welcome").await;
    let lines = client.sync(Duration::from_secs(20)).await;
    assert!(
        lines.iter().any(|l| l.ends_with("JOIN #welcome")),
        "{lines:#?}"
    );

    let out = Command::new(unsplit())
        .args(["localnet", "--stop", "--dir"])
        .arg(&dir)
        .output()
        .expect("stop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || zombie(pid),
            "process {pid} still runs"
        );
    }
}

fn zombie(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
