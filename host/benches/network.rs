//! Throughput and latency of a real node process over the RobustSession API.
//!
//! `cargo bench -p unsplit-host --bench network` starts `unsplit node` (release build) in a
//! temporary directory and measures, for N sessions in one channel all sending PRIVMSG
//! (N = 2, 11, 51; one line in flight per session, as RobustSession clients do):
//! committed lines/s (acknowledged posts), delivered lines/s (lines received on all
//! GetMessages streams), and latency p50/p99 from send to delivery; then the session
//! setup rate (create + NICK + USER).

#[path = "../../tests/harness/mod.rs"]
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harness::{Http, Session, TestNode, tempdir};

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

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("network bench: run with `cargo bench -p unsplit-host --bench network`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let tmp = tempdir();
        let node = TestNode::start_single(&tmp.path().join("n1"));
        let http = Http::new(&node).await;
        http.wait_ready().await;
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
    });
}
