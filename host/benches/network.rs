//! Throughput and latency of a real node process over the RobustSession API.
//!
//! `cargo bench -p unsplit-host --bench network` starts `unsplit node` (release build) in a
//! temporary directory and measures, for N sessions in one channel all sending PRIVMSG
//! (N = 2, 11, 51; one line in flight per session, as RobustSession clients do):
//! committed lines/s (acknowledged posts), delivered lines/s (lines received on all
//! GetMessages streams), and latency p50/p99 from send to delivery; then the session
//! setup rate (create + NICK + USER). Then the same on a 3-node cluster, and failover:
//! SIGKILL of the leader under a writer using the RobustSession client library (time to
//! the first write accepted again) and two IRC clients through a bridge (the longest gap
//! between two lines the receiver saw).

#[path = "../../tests/harness/mod.rs"]
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harness::{Http, IrcClient, Session, TestBridge, TestCluster, TestNode, tempdir};
use unsplit_bridge::client::{Network, NetworkConfig, Session as ClientSession, TlsRoots};

const RUN: Duration = Duration::from_secs(10);

fn micros_since(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn register(http: &Http, name: &str, channel: Option<&str>) -> Session {
    let s = http.create_session().await;
    assert_eq!(http.post(&s, &format!("NICK {name}")).await, 200);
    assert_eq!(
        http.post(&s, &format!("USER {name} 0 * :{name}")).await,
        200
    );
    if let Some(c) = channel {
        assert_eq!(http.post(&s, &format!("JOIN {c}")).await, 200);
    }
    s
}

async fn channel_run(http: &Http, senders: usize, round: usize) -> (f64, f64, f64, f64) {
    let channel = format!("#bench{round}");
    let mut sessions = Vec::new();
    for i in 0..senders {
        sessions.push(register(http, &format!("r{round}u{i}"), Some(&channel)).await);
    }
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let committed = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for s in &sessions {
        let mut stream = http.stream(s, "0.0").await;
        let (stop, delivered) = (stop.clone(), delivered.clone());
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let Some((_, line)) = stream.next_line(Duration::from_millis(500)).await else {
                    continue;
                };
                if let Some(sent) = line
                    .rsplit_once(" :t=")
                    .and_then(|(_, t)| t.parse::<u64>().ok())
                {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    latencies.push(micros_since(epoch).saturating_sub(sent));
                }
            }
            latencies
        }));
    }
    // Let the streams catch up with the registration burst.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let delivered_before = delivered.load(Ordering::Relaxed);
    let mut writers = Vec::new();
    for s in sessions.clone() {
        let (http, channel, committed) = (http.clone(), channel.clone(), committed.clone());
        writers.push(tokio::spawn(async move {
            while start.elapsed() < RUN {
                let line = format!("PRIVMSG {channel} :t={}", micros_since(epoch));
                if http.post(&s, &line).await == 200 {
                    committed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in writers {
        let _ = w.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for r in readers {
        latencies.extend(r.await.unwrap_or_default());
    }
    latencies.sort_unstable();
    let committed = committed.load(Ordering::Relaxed) as f64 / elapsed;
    let delivered = (delivered.load(Ordering::Relaxed) - delivered_before) as f64 / elapsed;
    (
        committed,
        delivered,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

async fn setup_rate(http: &Http, sessions: usize, workers: usize) -> f64 {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (http, next) = (http.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= sessions {
                    return;
                }
                register(&http, &format!("setup{i}"), None).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    sessions as f64 / start.elapsed().as_secs_f64()
}

/// One failover trial: returns (time from SIGKILL of the leader to the first write
/// acknowledged after it, longest gap between two lines an IRC client saw).
async fn failover_trial(dir: &std::path::Path) -> (Duration, Duration) {
    let mut cluster = TestCluster::start(dir, 3).await;
    let leader = cluster.wait_converged(Duration::from_secs(60)).await;
    cluster
        .http(cluster.index_of(&leader))
        .await
        .no_throttle()
        .await;
    let servers: Vec<String> = cluster.nodes.iter().map(|n| n.addr.clone()).collect();
    let mut config = NetworkConfig::new(servers.clone());
    config.tls = TlsRoots::CaFile(cluster.cert.clone());
    let network = Network::new(config).expect("network");
    let writer = ClientSession::create(&network).await.expect("session");
    writer.post("NICK writer").await.expect("post");
    writer.post("USER w 0 * :w").await.expect("post");
    writer.post("JOIN #fo").await.expect("post");

    let nodes: Vec<&TestNode> = cluster.nodes.iter().collect();
    let bridge = TestBridge::start(&nodes, &cluster.cert, &dir.join("bridge.log"));
    let mut talker = IrcClient::connect(&bridge.irc).await;
    let mut listener = IrcClient::connect(&bridge.irc).await;
    talker.register("talker").await;
    listener.register("listener").await;
    talker.send("JOIN #fo").await;
    talker.sync(Duration::from_secs(20)).await;
    listener.send("JOIN #fo").await;
    listener.sync(Duration::from_secs(20)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let acks: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
    let writing = {
        let (stop, acks) = (stop.clone(), acks.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                if writer.post(&format!("PRIVMSG #fo :w{i}")).await.is_ok() {
                    acks.lock().unwrap().push(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let talking = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                talker.send(&format!("PRIVMSG #fo :t{i}")).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = Instant::now();
    let victim = cluster.index_of(&leader);
    cluster.nodes[victim].kill();
    let mut arrivals = vec![Instant::now()];
    while killed.elapsed() < Duration::from_secs(12) {
        if let Some(line) = listener.line(Duration::from_millis(500)).await
            && line.contains("PRIVMSG #fo :t")
        {
            arrivals.push(Instant::now());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = writing.await;
    let _ = talking.await;
    let first_ack = acks.lock().unwrap().iter().copied().find(|&t| t > killed);
    let resumed = first_ack.map(|t| t - killed).unwrap_or(Duration::MAX);
    let gap = arrivals
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    (resumed, gap)
}

async fn failover_table(dir: &std::path::Path) {
    println!();
    println!(
        "| failover trial | first write accepted after SIGKILL of the leader | longest gap an IRC client saw |"
    );
    println!("|---|---|---|");
    for trial in 1..=5 {
        let (resumed, gap) = failover_trial(&dir.join(format!("failover{trial}"))).await;
        println!(
            "| {trial} | {:.2} s | {:.2} s |",
            resumed.as_secs_f64(),
            gap.as_secs_f64()
        );
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("network bench: run with `cargo bench -p unsplit-host --bench network`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // UNSPLIT_BENCH=failover runs only the failover trials.
    let only_failover = std::env::var("UNSPLIT_BENCH").is_ok_and(|v| v == "failover");
    runtime.block_on(async {
        let tmp = tempdir();
        if only_failover {
            failover_table(tmp.path()).await;
            return;
        }
        let node = TestNode::start_single(&tmp.path().join("n1"));
        let http = Http::new(&node).await;
        http.wait_ready().await;
        // Throughput, not abuse protection, is measured here (as RobustIRC's benchmark
        // config does, throttling is off).
        http.no_throttle().await;
        println!("| senders in one channel | committed lines/s | delivered lines/s | latency p50 | latency p99 |");
        println!("|---|---|---|---|---|");
        for (round, senders) in [2usize, 11, 51].into_iter().enumerate() {
            let (c, d, p50, p99) = channel_run(&http, senders, round).await;
            println!("| {senders} | {c:.0} | {d:.0} | {p50:.1} ms | {p99:.1} ms |");
        }
        let rate = setup_rate(&http, 500, 16).await;
        println!();
        println!("session setup (create + NICK + USER, 16 concurrent clients): {rate:.0} sessions/s");
        drop(node);

        println!();
        println!("3-node cluster (writes go to the leader; streams served by the node each client picked):");
        let cluster_dir = tmp.path().join("cluster");
        let cluster = TestCluster::start(&cluster_dir, 3).await;
        let leader = cluster.wait_converged(Duration::from_secs(60)).await;
        let http = cluster.http(cluster.index_of(&leader)).await;
        http.no_throttle().await;
        println!("| senders in one channel | committed lines/s | delivered lines/s | latency p50 | latency p99 |");
        println!("|---|---|---|---|---|");
        for (round, senders) in [2usize, 11, 51].into_iter().enumerate() {
            let (c, d, p50, p99) = channel_run(&http, senders, round + 10).await;
            println!("| {senders} | {c:.0} | {d:.0} | {p50:.1} ms | {p99:.1} ms |");
        }
        drop(cluster);

        failover_table(tmp.path()).await;
    });
}
