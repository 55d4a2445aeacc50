//! INFO carries the fields that dashboards and redis_exporter read, with Redis's meanings.

mod common;

use common::*;

/// Every field the monitoring tools read is present.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_fields_are_present() {
    let s = start_server().await;
    let mut c = s.raw().await;
    let info = c.call(&["INFO", "everything"]).await.text();
    for field in [
        "redis_version",
        "fanout_version",
        "uptime_in_seconds",
        "connected_clients",
        "blocked_clients",
        "pubsub_clients",
        "pubsub_channels",
        "pubsub_patterns",
        "pubsubshard_channels",
        "total_connections_received",
        "total_commands_processed",
        "instantaneous_ops_per_sec",
        "total_net_input_bytes",
        "total_net_output_bytes",
        "rejected_connections",
        "used_memory",
        "used_memory_rss",
    ] {
        assert!(info_field(&info, field).is_some(), "INFO lacks {field}:\n{info}");
    }
    assert_eq!(info_field(&info, "fanout_version").unwrap(), env!("CARGO_PKG_VERSION"));
    assert!(info_field(&info, "used_memory_rss").unwrap().parse::<u64>().unwrap() > 0);
}

/// The counters move with traffic, and the instantaneous rate follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_rates_follow_traffic() {
    let s = start_server_with(&[("maxclients", "3")]).await;
    let mut c = s.raw().await;
    let before = c.call(&["INFO", "stats"]).await.text();
    let num = |t: &str, k: &str| info_field(t, k).unwrap().parse::<f64>().unwrap();

    // Enough commands over more than one sampling period (100 ms) for a rate.
    for _ in 0..30 {
        for _ in 0..50 {
            c.send(&["PING"]).await;
        }
        for _ in 0..50 {
            c.read_frame().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let _c2 = s.raw().await;
    let _c3 = s.raw().await;
    // The fourth connection is over maxclients and refused.
    let mut refused = RawConn::connect(s.addr).await;
    refused.expect(b"-ERR max number of clients reached\r\n").await;

    let after = c.call(&["INFO", "stats"]).await.text();
    assert!(num(&after, "total_commands_processed") >= num(&before, "total_commands_processed") + 1500.0);
    assert!(num(&after, "total_net_input_bytes") > num(&before, "total_net_input_bytes"));
    assert!(num(&after, "total_net_output_bytes") > num(&before, "total_net_output_bytes"));
    assert!(num(&after, "instantaneous_ops_per_sec") > 0.0, "{after}");
    assert_eq!(num(&after, "rejected_connections"), 1.0);
}
