use receipts_domain::Scope;
use receipts_domain::event::now_millis;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_valid_credentials_are_401() {
    let app = TestApp::spawn().await;
    let body = sample(JSON_TYPE, 1);

    let response = app
        .submit(
            None,
            Some("application/json"),
            Some(JSON_TYPE),
            Some("k1"),
            body.clone(),
        )
        .await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"receipts\""
    );
    assert_problem(response, 401, "unauthenticated").await;

    let unknown = "rk_thisisnotakeythisisnotakeythisisnotakey0";
    let response = app
        .submit(
            Some(unknown),
            Some("application/json"),
            Some(JSON_TYPE),
            Some("k2"),
            body.clone(),
        )
        .await;
    assert_problem(response, 401, "unauthenticated").await;

    let response = app
        .http
        .post(app.url("/v1/receipts"))
        .header("Authorization", format!("Basic {}", app.writer))
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_problem(response, 401, "unauthenticated").await;

    let response = app
        .http
        .get(app.url("/v1/receipts/01a1fdb0-466b-7339-a3c0-b494a01de95d"))
        .send()
        .await
        .expect("send");
    assert_problem(response, 401, "unauthenticated").await;

    // A revoked key stops working at once.
    let (id, key) = create_key(&app.stores, "acme", Scope::ReadWrite).await;
    let ok = app
        .submit(
            Some(&key),
            Some("application/json"),
            Some(JSON_TYPE),
            Some("k3"),
            body.clone(),
        )
        .await;
    assert_eq!(ok.status(), 202);
    assert!(
        app.stores
            .clients
            .revoke_client(id, now_millis())
            .await
            .expect("revoke")
    );
    let response = app
        .submit(
            Some(&key),
            Some("application/json"),
            Some(JSON_TYPE),
            Some("k4"),
            body,
        )
        .await;
    assert_problem(response, 401, "unauthenticated").await;

    assert_eq!(
        app.submitted_count(),
        1,
        "only the authorised submission was produced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_scope_cannot_submit_but_can_read() {
    let app = TestApp::spawn().await;
    let response = app
        .submit(
            Some(&app.reader),
            Some("application/json"),
            Some(JSON_TYPE),
            Some("r1"),
            sample(JSON_TYPE, 2),
        )
        .await;
    assert_problem(response, 403, "forbidden").await;
    assert_eq!(app.submitted_count(), 0);

    let accepted: serde_json::Value = app
        .submit_json("w1", sample(JSON_TYPE, 3))
        .await
        .json()
        .await
        .expect("json");
    let id = accepted["id"].as_str().expect("id");
    let response = app.get(&app.reader, &format!("/v1/receipts/{id}")).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_receipt_is_not_found() {
    let app = TestApp::spawn().await;
    let accepted: serde_json::Value = app
        .submit_json("t1", sample(JSON_TYPE, 4))
        .await
        .json()
        .await
        .expect("json");
    let id = accepted["id"].as_str().expect("id");
    assert_eq!(
        app.get(&app.writer, &format!("/v1/receipts/{id}"))
            .await
            .status(),
        200
    );
    assert_problem(
        app.get(&app.other, &format!("/v1/receipts/{id}")).await,
        404,
        "receipt-not-found",
    )
    .await;
    assert_problem(
        app.get(&app.other, &format!("/v1/receipts/{id}/document"))
            .await,
        404,
        "receipt-not-found",
    )
    .await;
}
