use futures::StreamExt;

use crate::helpers::*;

/// (content type, receipt type, idempotency key, body, expected status, expected problem slug)
type BadRequest<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Vec<u8>,
    u16,
    &'a str,
);

/// Bad input: a precise 4xx with a problem document, and nothing produced or reserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_precise_4xx_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let json = "application/json";
    let xml = "application/xml";
    let valid_json = sample(JSON_TYPE, 10);
    let bomb = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Receipt xmlns="urn:receipts:retail-receipt:v1">&lol3;</Receipt>"#
        .to_vec();
    let oversized = {
        let mut doc = b"{\"padding\": \"".to_vec();
        doc.resize(MAX_BODY + 10, b'x');
        doc.extend_from_slice(b"\"}");
        doc
    };
    let mut invalid_utf8 = b"{\"receipt_number\": \"".to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    invalid_utf8.extend_from_slice(b"\"}");

    let cases: Vec<BadRequest> = vec![
        (
            Some(json),
            Some(JSON_TYPE),
            Some("bad-1"),
            b"{\"receipt_number\": ".to_vec(),
            400,
            "malformed-json",
        ),
        (
            Some(json),
            Some(JSON_TYPE),
            Some("bad-2"),
            b"[1, 2, 3]".to_vec(),
            400,
            "malformed-json",
        ),
        (
            Some(xml),
            Some(XML_TYPE),
            Some("bad-3"),
            b"<Receipt><Number>1</Receipt>".to_vec(),
            400,
            "malformed-xml",
        ),
        (
            Some(xml),
            Some(XML_TYPE),
            Some("bad-4"),
            bomb,
            400,
            "xml-dtd-forbidden",
        ),
        (
            Some(json),
            Some(JSON_TYPE),
            Some("bad-5"),
            invalid_utf8,
            400,
            "invalid-utf8",
        ),
        (
            Some(json),
            Some(JSON_TYPE),
            Some("bad-6"),
            Vec::new(),
            400,
            "empty-document",
        ),
        (
            Some(json),
            Some(JSON_TYPE),
            Some("bad-7"),
            oversized,
            413,
            "payload-too-large",
        ),
        (
            Some("text/plain"),
            Some(JSON_TYPE),
            Some("bad-8"),
            valid_json.clone(),
            415,
            "unsupported-media-type",
        ),
        (
            None,
            Some(JSON_TYPE),
            Some("bad-9"),
            valid_json.clone(),
            415,
            "unsupported-media-type",
        ),
        (
            Some("application/json; charset=latin1"),
            Some(JSON_TYPE),
            Some("bad-10"),
            valid_json.clone(),
            415,
            "unsupported-charset",
        ),
        (
            Some(xml),
            Some(JSON_TYPE),
            Some("bad-11"),
            sample(XML_TYPE, 11),
            415,
            "media-type-mismatch",
        ),
        (
            Some(json),
            None,
            Some("bad-12"),
            valid_json.clone(),
            400,
            "missing-header",
        ),
        (
            Some(json),
            Some("retail-receipt/v99"),
            Some("bad-13"),
            valid_json.clone(),
            400,
            "unknown-receipt-type",
        ),
        (
            Some(json),
            Some(JSON_TYPE),
            None,
            valid_json.clone(),
            400,
            "missing-header",
        ),
        (
            Some(json),
            Some(JSON_TYPE),
            Some(""),
            valid_json.clone(),
            400,
            "invalid-header",
        ),
    ];
    for (content_type, receipt_type, key, body, status, slug) in cases {
        let response = app
            .submit(Some(&app.writer), content_type, receipt_type, key, body)
            .await;
        let problem = assert_problem(response, status, slug).await;
        assert!(problem.get("stack").is_none());
    }

    // A bad Callback-Url.
    let response = app
        .http
        .post(app.url("/v1/receipts"))
        .bearer_auth(&app.writer)
        .header("Content-Type", json)
        .header("Receipt-Type", JSON_TYPE)
        .header("Idempotency-Key", "bad-14")
        .header("Callback-Url", "ftp://partner.example/hook")
        .body(valid_json.clone())
        .send()
        .await
        .expect("send");
    assert_problem(response, 400, "invalid-header").await;

    // An oversized body without Content-Length (chunked) is cut off at the limit too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let stream = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = app
        .submit(
            Some(&app.writer),
            Some(json),
            Some(JSON_TYPE),
            Some("bad-15"),
            stream,
        )
        .await;
    assert_problem(response, 413, "payload-too-large").await;

    assert_eq!(app.submitted_count(), 0, "no bad request produced anything");

    // None of the keys above was consumed: a valid request with one of them is fresh.
    let response = app.submit_json("bad-1", valid_json).await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("idempotent-replayed").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = TestApp::spawn().await;
    assert_problem(app.get(&app.writer, "/v1/nope").await, 404, "not-found").await;
    let response = app
        .http
        .delete(app.url("/v1/receipts"))
        .bearer_auth(&app.writer)
        .send()
        .await
        .expect("send");
    assert_problem(response, 405, "method-not-allowed").await;
    assert_problem(
        app.get(&app.writer, "/v1/receipts/not-a-uuid").await,
        404,
        "receipt-not-found",
    )
    .await;
    assert_problem(
        app.get(
            &app.writer,
            "/v1/receipts/01a1fdb0-466b-7339-a3c0-b494a01de95d",
        )
        .await,
        404,
        "receipt-not-found",
    )
    .await;
}

/// A client that stops sending mid-body does not hold the request forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_times_out_with_408() {
    let app =
        TestApp::spawn_with(|http| http.request_timeout = std::time::Duration::from_millis(500))
            .await;
    let stalled =
        futures::stream::once(async { Ok::<_, std::io::Error>(b"{\"receipt_number\": ".to_vec()) })
            .chain(futures::stream::pending());
    let response = app
        .submit(
            Some(&app.writer),
            Some("application/json"),
            Some(JSON_TYPE),
            Some("stalled-1"),
            reqwest::Body::wrap_stream(stalled),
        )
        .await;
    assert_problem(response, 408, "request-timeout").await;
    assert_eq!(app.submitted_count(), 0);
}
