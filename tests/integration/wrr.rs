//! SPEC §5 through real requests: the smooth-WRR sequence is global to the
//! process, across worker threads and connections.

use std::sync::{Arc, Mutex};

use gateway_tests::{Behavior, Client, Gateway, Upstream};

use crate::{cluster, config};

#[test]
fn seventy_sequential_requests_follow_the_sequence_exactly() {
    let (a, b, c) = (
        Upstream::start("a", Behavior::Echo),
        Upstream::start("b", Behavior::Echo),
        Upstream::start("c", Behavior::Echo),
    );
    let gw = Gateway::start(&config(
        "  - { name: r, pathPrefix: /, cluster: abc }\n",
        &[cluster("abc", &[(&a, 5), (&b, 1), (&c, 1)])],
    ));
    let mut got = String::new();
    for i in 0..70 {
        // A new connection each time, so both worker threads take turns.
        let mut client = Client::connect(gw.addr).expect("connect");
        let r = client.get("wrr.test", &format!("/{i}")).expect("response");
        got.push_str(r.header("x-upstream").unwrap_or("?"));
    }
    assert_eq!(got, "aabacaa".repeat(10));
}

#[test]
fn concurrent_requests_split_exactly_by_weight() {
    let (a, b) = (
        Upstream::start("a", Behavior::Echo),
        Upstream::start("b", Behavior::Echo),
    );
    let gw = Gateway::start(&config(
        "  - { name: r, pathPrefix: /, cluster: ab }\n",
        &[cluster("ab", &[(&a, 3), (&b, 1)])],
    ));
    let counts = Arc::new(Mutex::new((0usize, 0usize)));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (addr, counts) = (gw.addr, counts.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr).expect("connect");
                for _ in 0..50 {
                    let r = c.get("wrr.test", "/").expect("response");
                    let mut n = counts.lock().expect("lock");
                    match r.header("x-upstream") {
                        Some("a") => n.0 += 1,
                        Some("b") => n.1 += 1,
                        other => panic!("unexpected upstream {other:?}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    assert_eq!(*counts.lock().expect("lock"), (300, 100));
}
