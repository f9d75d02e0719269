//! Webhook POSTs over HTTP/1.1 (hyper), signed with HMAC-SHA256.
//!
//! Headers: `custos-delivery` (stable per delivery, the same on every retry: receivers
//! de-duplicate by it), `custos-event` (`alert.raised`, ...) and `custos-signature`
//! (`sha256=` and the lowercase hex HMAC-SHA256 of the exact body bytes under the webhook's
//! secret). Any 2xx answer counts as delivered; anything else, or no answer within the
//! timeout, is a failed try.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The signature header's value for `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let mut out = String::from("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// POST `body` to `url`; `Err` says why it did not count as delivered.
pub async fn post(
    url: &str,
    secret: &str,
    delivery_id: &str,
    event: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(), String> {
    tokio::time::timeout(timeout, post_inner(url, secret, delivery_id, event, body))
        .await
        .map_err(|_| "timed out".to_owned())?
}

async fn post_inner(
    url: &str,
    secret: &str,
    delivery_id: &str,
    event: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
    let host = uri.host().ok_or("url without host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let driver = tokio::spawn(conn);
    let authority = uri
        .authority()
        .map_or_else(|| host.clone(), |a| a.as_str().to_owned());
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let request = Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("custos-delivery", delivery_id)
        .header("custos-event", event)
        .header("custos-signature", signature(secret.as_bytes(), &body))
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    // Drain the answer so the connection ends cleanly.
    let _ = response.into_body().collect().await;
    driver.abort();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (HMAC-SHA-256).
    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
