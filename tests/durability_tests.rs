//! Durability of the event store (PRODUCT principle "nothing lost"): an event Kevlar acknowledged
//! survives `kill -9`. WAL mode; every batch is committed before its acknowledgements are sent.

#![allow(clippy::unwrap_used)]

mod common;

use common::{client, events_in, DemoApp, Kevlar};
use serde_json::json;

#[tokio::test]
async fn acknowledged_events_survive_kill_9() {
    let app = DemoApp::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut k = Kevlar::guard(&app.url()).data_dir(&data).start();
    let c = client();
    let t = k.token();
    const N: usize = 300;
    let mut tasks = Vec::new();
    for i in 0..N {
        let c = c.clone();
        let url = k.admin_url("/v1/events");
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .bearer_auth(t)
                .json(&json!({"event": {"action": "app_test_event"}, "message": format!("n{i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 201);
    }
    k.kill9();
    let after = events_in(&data, &["--action", "app_test_event", "--limit", "100000"]);
    assert_eq!(after.len(), N, "every acknowledged event is on disk after kill -9");
    // And Kevlar starts again on the same store, adding to it.
    let k2 = Kevlar::guard(&app.url()).data_dir(&data).start();
    assert_eq!(k2.token(), t, "the admin token is kept across restarts");
    // The second start's own event is written asynchronously: wait for it.
    let mut startups = 0;
    for _ in 0..500 {
        startups = k2.events(&["--action", "sys_startup"]).len();
        if startups >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(startups, 2);
}
