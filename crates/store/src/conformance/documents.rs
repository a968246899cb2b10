//! [`DocumentStore`](crate::DocumentStore).

use receipts_domain::ReceiptId;

use super::unique_tenant;
use crate::{Document, Stores};

/// Documents come back byte for byte, whatever the bytes are; the first document of a receipt
/// stays (a retried submission stores nothing new).
pub async fn documents_are_byte_exact_and_the_first_stays(stores: &Stores) {
    let tenant = unique_tenant();
    let mut large = Vec::with_capacity(64 * 1024);
    for n in 0..64 * 1024 {
        large.push((n % 251) as u8);
    }
    let bodies: [Vec<u8>; 4] = [
        b"{\"total\": \"5.00\"}".to_vec(),
        vec![0, 159, 146, 150, 0xff, 0xfe, b'\r', b'\n'],
        "<r>\u{feff}Grüße</r>\r\n".as_bytes().to_vec(),
        large,
    ];
    for bytes in bodies {
        let document = Document {
            receipt_id: ReceiptId::new(),
            tenant_id: tenant.clone(),
            content_type: "application/xml; charset=utf-8".into(),
            bytes,
        };
        stores.documents.put_document(&document).await.expect("put");
        let mut other = document.clone();
        other.bytes = b"something else".to_vec();
        other.content_type = "text/plain".into();
        stores
            .documents
            .put_document(&other)
            .await
            .expect("put again");
        assert_eq!(
            stores
                .documents
                .document(document.receipt_id)
                .await
                .expect("read"),
            Some(document)
        );
    }
    assert_eq!(
        stores
            .documents
            .document(ReceiptId::new())
            .await
            .expect("read"),
        None
    );
}
