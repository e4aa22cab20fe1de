//! RobustIRC's robustness test, bounded for CI: a three-node network (real processes on
//! 127.0.0.1) plus a bridge, 20 RobustSession sessions and 4 IRC clients talking while
//! nodes are SIGKILLed and restarted on a fixed schedule (seed); then every node must hold
//! the same output for every input and every acknowledged line must have reached every
//! addressee exactly once, in order (see `unsplit_host::robustness`).
//!
//! A failure keeps the run's directory (node logs, data) and prints its path; the same
//! schedule runs again with `unsplit robustness --seed <SEED>`.

mod harness;

use std::time::Duration;

use unsplit_host::robustness::{self, RobustnessOptions};

const SEED: u64 = 6001;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn network_survives_random_node_kills() {
    let tmp = harness::tempdir();
    let mut opts = RobustnessOptions::new(tmp.path().join("run"), harness::unsplit());
    opts.duration = Duration::from_secs(45);
    // A chaos action every 1.5–4.5 s: at least one round of all four kinds (kill a node,
    // kill the leader, kill two in a row, snapshot then maybe kill).
    opts.kill_interval = Duration::from_secs(3);
    opts.seed = SEED;
    opts.verbose = true;
    match robustness::run(opts).await {
        Ok(report) => {
            println!("{report}");
            assert!(report.clean(), "{report}");
            assert!(
                report.chaos_actions >= 4 && report.double_kills >= 1 && report.leader_kills >= 1,
                "too little chaos: {report}"
            );
            assert!(
                report.lines_acknowledged > 300,
                "too little traffic: {report}"
            );
            assert_eq!(
                report.deliveries, report.deliveries_expected,
                "every acknowledged line is delivered once and nothing else: {report}"
            );
        }
        Err(e) => {
            let kept = tmp.keep();
            panic!(
                "{e}\n(seed {SEED}; everything kept in {})",
                kept.join("run").display()
            );
        }
    }
}
