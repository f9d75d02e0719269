//! A browser without script for the page tests: a cookie jar, forms posted as
//! `application/x-www-form-urlencoded`, and answers searched by their stable ids and tags.

use std::collections::HashMap;
use std::net::SocketAddr;

use custos_server::web::form::encode;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::Server;

/// An answer, with the body as text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn location(&self) -> &str {
        self.header("location")
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    pub fn is_html(&self) -> bool {
        self.header("content-type").starts_with("text/html")
    }

    /// The value of the first `name="..."` attribute after `marker`.
    pub fn attr_after(&self, marker: &str, name: &str) -> Option<String> {
        let at = self.body.find(marker)?;
        let rest = &self.body[at..];
        let start = rest.find(&format!("{name}=\""))? + name.len() + 2;
        let end = rest[start..].find('"')?;
        Some(rest[start..start + end].to_owned())
    }

    /// Every start tag containing `needle`.
    pub fn tags(&self, needle: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(at) = self.body[from..].find(needle) {
            let at = from + at;
            let start = self.body[..at].rfind('<').unwrap_or(0);
            let end = at + self.body[at..].find('>').unwrap_or(0);
            out.push(&self.body[start..=end]);
            from = end + 1;
        }
        out
    }

    /// The start tag containing `needle` (there must be exactly one).
    pub fn tag(&self, needle: &str) -> &str {
        let tags = self.tags(needle);
        assert_eq!(tags.len(), 1, "{needle}: {tags:?}\n{}", self.body);
        tags[0]
    }

    /// The markup of the element with `id`, up to its matching closing tag.
    pub fn element(&self, id: &str) -> &str {
        let needle = format!("id=\"{id}\"");
        let at = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no #{id} in\n{}", self.body));
        let start = self.body[..at].rfind('<').unwrap();
        let name: String = self.body[start + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let (open, close) = (format!("<{name}"), format!("</{name}>"));
        let mut depth = 0usize;
        let mut i = start;
        loop {
            let next_open = self.body[i..]
                .match_indices(&open)
                .map(|(o, _)| i + o)
                .find(|&o| {
                    matches!(
                        self.body.as_bytes().get(o + open.len()),
                        Some(b' ' | b'>' | b'/')
                    )
                });
            let next_close = i + self.body[i..].find(&close).expect("closing tag");
            match next_open {
                Some(o) if o < next_close => {
                    depth += 1;
                    i = o + open.len();
                }
                _ => {
                    depth -= 1;
                    i = next_close + close.len();
                    if depth == 0 {
                        return &self.body[start..i];
                    }
                }
            }
        }
    }
}

/// A browser without script: keeps cookies, posts forms.
pub struct Browser {
    addr: SocketAddr,
    /// Cookies by name.
    pub jar: HashMap<String, String>,
    extra: Vec<(String, String)>,
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Browser {
            addr: server.addr,
            jar: HashMap::new(),
            extra: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Browser {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name).map(String::as_str)
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Answer {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            builder = builder.header("cookie", cookies.join("; "));
        }
        for (k, v) in &self.extra {
            builder = builder.header(k.as_str(), v.as_str());
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("request");
        let response = sender.send_request(request).await.expect("send");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let answer = Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).expect("UTF-8 body"),
        };
        for set in answer.set_cookies() {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || set.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        answer
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], None).await
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Method::POST,
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body),
        )
        .await
    }

    /// Sign in through the form; returns the answer to the POST.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Answer {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = form
            .attr_after(r#"name="csrf""#, "value")
            .expect("sign-in token");
        self.post_form(
            "/login",
            &[
                ("csrf", &token),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// The CSRF secret rendered into a page's `<meta name="csrf-token">`.
    pub async fn csrf(&mut self, page: &str) -> String {
        let answer = self.get(page).await;
        assert_eq!(answer.status, 200, "{page}: {}", answer.body);
        answer
            .attr_after(r#"name="csrf-token""#, "content")
            .expect("csrf meta")
    }

    /// The page and its CSRF secret.
    pub async fn page(&mut self, path: &str) -> (Answer, String) {
        let answer = self.get(path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let csrf = answer
            .attr_after(r#"name="csrf-token""#, "content")
            .expect("csrf meta");
        (answer, csrf)
    }
}
