//! A full disk at the HTTP level (issue #9): a write that cannot be stored answers 507
//! `storage_full` (not a generic 500), keeps nothing, and the server recovers by itself once
//! space is back. The full disk is SQLite's `max_page_count` on the writer connection.

mod common;

use common::{ADMIN_PASSWORD, Server};
use hyper::Method;
use serde_json::json;

#[tokio::test]
async fn a_full_disk_is_507_storage_full_and_the_server_recovers() {
    common::tracing();
    let server = Server::start().await;
    let admin = server.login("admin", ADMIN_PASSWORD).await;
    let store = server.state.store();
    store.cap_pages_for_tests(1).await.unwrap();

    // Zones with long names until the database cannot grow.
    let name = "n".repeat(200);
    let mut refused = None;
    for i in 0..2000 {
        let id = format!("zone-{i}");
        let reply = server
            .call(
                Method::POST,
                "/api/v1/zones",
                Some(&admin),
                Some(json!({"id": id, "name": name, "level": "S"})),
            )
            .await;
        match reply.status {
            201 => {}
            507 => {
                assert_eq!(reply.body["error"], "storage_full", "{:?}", reply.body);
                assert!(
                    reply.body["message"]
                        .as_str()
                        .unwrap()
                        .contains("storage full"),
                    "{:?}",
                    reply.body
                );
                refused = Some(id);
                break;
            }
            other => panic!("zone {i}: {other} {:?}", reply.body),
        }
    }
    let refused = refused.expect("the capped database filled up");
    // Space is back: the same request succeeds (nothing of the refused one was kept).
    store.cap_pages_for_tests(1 << 30).await.unwrap();
    let reply = server
        .call(
            Method::POST,
            "/api/v1/zones",
            Some(&admin),
            Some(json!({"id": refused, "name": name, "level": "S"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}
