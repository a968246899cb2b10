//! The OpenAPI document against the router: every route is documented with exactly the methods
//! it serves, the served and committed documents are the generated one, and `/docs` works
//! offline.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ingest_gateway::{AppState, HttpConfig, router};
use receipts_store::{SqliteOptions, SqliteStore, Stores};
use receipts_testkit::TestEnv;
use receipts_webhooks::WebhookConfig;
use serde_json::Value;
use tower::ServiceExt;

use crate::helpers::TestApp;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The paths of a router, from its `Debug` form (axum offers no other way to list them).
fn routed_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    // The routes proper; the fallback router holds axum's own catch-all paths.
    let routes = debug
        .split_once("fallback_router:")
        .map_or(debug.as_str(), |(routes, _)| routes);
    routes
        .split("RouteId(")
        .skip(1)
        .filter_map(|piece| {
            let rest = piece.split_once("): \"")?.1;
            Some(rest.split_once('"')?.0.to_owned())
        })
        .collect()
}

/// Operations of the document: path -> methods.
fn documented(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("path item")
                .keys()
                .filter(|k| METHODS.iter().any(|m| m.as_str().eq_ignore_ascii_case(k)))
                .map(|k| k.to_ascii_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_with_the_methods_it_serves() {
    let env = TestEnv::new();
    let stores = Stores::of(
        SqliteStore::open(
            &env.dir.path().join("receipts.db"),
            &SqliteOptions::default(),
        )
        .await
        .expect("store"),
    );
    let addr: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
    let state = AppState::new(
        stores,
        env.producer(),
        &HttpConfig::default(),
        &WebhookConfig::default(),
        addr,
    );
    let app = router(state);
    let routed = routed_paths(&app);
    assert!(
        routed.len() >= 20,
        "routes read from the router: {routed:?}"
    );

    let document: Value =
        serde_json::from_str(&ingest_gateway::openapi::document_json()).expect("json");
    let documented = documented(&document);
    assert_eq!(
        routed,
        documented.keys().cloned().collect::<BTreeSet<_>>(),
        "router paths vs documented paths"
    );

    for path in &routed {
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let mut served = BTreeSet::new();
        for method in METHODS {
            let request = Request::builder()
                .method(method.clone())
                .uri(&concrete)
                .body(Body::empty())
                .expect("request");
            let response = app.clone().oneshot(request).await.expect("response");
            if response.status() != StatusCode::METHOD_NOT_ALLOWED {
                served.insert(method.as_str().to_owned());
            }
        }
        assert_eq!(
            served, documented[path],
            "{path}: methods served vs documented"
        );
    }
}

#[test]
fn operations_are_complete() {
    let document: Value =
        serde_json::from_str(&ingest_gateway::openapi::document_json()).expect("json");
    assert_eq!(document["openapi"], "3.1.0");
    let mut operation_ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            let at = format!("{method} {path}");
            assert!(operation["summary"].is_string(), "{at}: summary");
            assert!(
                operation_ids.insert(operation["operationId"].as_str().expect("id").to_owned()),
                "{at}: operation ids are unique"
            );
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{at}: a success response"
            );
            if path.starts_with("/v1/") && !path.starts_with("/v1/registries/") {
                let scopes = &operation["security"][0]["api_key"];
                assert!(
                    scopes == &serde_json::json!(["read"])
                        || scopes == &serde_json::json!(["read-write"]),
                    "{at}: needs an API key with a scope, has {scopes}"
                );
                for status in ["401", "408", "503"] {
                    assert!(responses.contains_key(status), "{at}: {status}");
                }
                if scopes == &serde_json::json!(["read-write"]) {
                    assert!(responses.contains_key("403"), "{at}: 403");
                }
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') && status != "503" {
                    assert_eq!(
                        response["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{at} {status}: a problem document"
                    );
                }
            }
        }
    }
    let submit = &document["paths"]["/v1/receipts"]["post"];
    let headers: BTreeSet<&str> = submit["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "header")
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        headers,
        BTreeSet::from(["Idempotency-Key", "Receipt-Type", "Callback-Url"])
    );
    assert!(
        submit["requestBody"]["content"]["application/json"]["example"].is_object(),
        "the submission has an example"
    );
    assert_eq!(
        document["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_and_the_docs_page_are_served_without_a_key() {
    let app = TestApp::spawn().await;
    let served = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("openapi.json");
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "application/json");
    let served = served.text().await.expect("body");
    assert_eq!(served, ingest_gateway::openapi::document_json());

    let page = app.http.get(app.url("/docs")).send().await.expect("docs");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("default-src 'self'")
    );
    let html = page.text().await.expect("html");
    // Every asset the page names is served by the gateway itself: no CDN.
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/docs.js",
    ] {
        assert!(html.contains(asset), "{asset} in the page");
        let response = app.http.get(app.url(asset)).send().await.expect("asset");
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(
            response.bytes().await.expect("bytes").len() > 100,
            "{asset}"
        );
    }
    assert!(
        !html.contains("://"),
        "the page loads nothing from elsewhere"
    );
    let missing = app
        .http
        .get(app.url("/docs/nothing.js"))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
