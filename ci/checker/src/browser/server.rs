//! A tiny static HTTP server for the built book (std only).
//!
//! The browser must load the book over HTTP, as a reader of the hosted book
//! does: over `file://` Chromium blocks the `fetch` of the search index and
//! other same-origin requests, which would hide (or invent) problems. The
//! server answers `GET` and `HEAD` for files under one directory, one thread
//! per connection, and closes each connection after its response.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Serves the files under a directory on `127.0.0.1` (a free port) until
/// dropped.
#[derive(Debug)]
pub struct StaticServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl StaticServer {
    /// Starts serving `dir` on a free port of `127.0.0.1`.
    pub fn start(dir: &Path) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let root = dir.to_path_buf();
        let stopping = Arc::clone(&stop);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let root = root.clone();
                thread::spawn(move || {
                    // A client that hangs up mid-request is its own problem.
                    let _ = serve(stream, &root);
                });
            }
        });
        Ok(Self {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:PORT/`, the URL of the directory's root.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve(stream: TcpStream, root: &Path) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The headers are read and ignored: no keep-alive, no ranges.
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let mut out = stream;
    if method != "GET" && method != "HEAD" {
        return respond(&mut out, "405 Method Not Allowed", "text/plain", b"", true);
    }
    let head_only = method == "HEAD";
    match resolve(root, target).and_then(|path| fs::read(&path).ok().map(|body| (path, body))) {
        Some((path, body)) => respond(&mut out, "200 OK", content_type(&path), &body, head_only),
        None => respond(
            &mut out,
            "404 Not Found",
            "text/plain; charset=utf-8",
            b"not found",
            head_only,
        ),
    }
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: max-age=600\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if !head_only {
        out.write_all(body)?;
    }
    out.flush()
}

/// The file a request target names under `root`: the query and fragment
/// dropped, percent-escapes decoded, a directory meaning its `index.html`;
/// `None` for anything outside `root` or missing.
pub(crate) fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let mut file = root.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => file.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if file.is_dir() {
        file.push("index.html");
    }
    file.is_file().then_some(file)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|ext| ext.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "txt" | "md" | "rs" | "toml" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_files_directories_and_escapes_but_nothing_outside_the_root() {
        let dir = crate::browser::tests::scratch("server-resolve");
        fs::create_dir_all(dir.join("sub dir")).unwrap();
        fs::write(dir.join("index.html"), "root").unwrap();
        fs::write(dir.join("sub dir/page.html"), "page").unwrap();
        fs::write(dir.join("sub dir/index.html"), "sub").unwrap();

        assert_eq!(resolve(&dir, "/"), Some(dir.join("index.html")));
        assert_eq!(
            resolve(&dir, "/sub%20dir/page.html?search=x#frag"),
            Some(dir.join("sub dir/page.html"))
        );
        assert_eq!(
            resolve(&dir, "/sub%20dir/"),
            Some(dir.join("sub dir/index.html"))
        );
        assert_eq!(resolve(&dir, "/missing.html"), None);
        assert_eq!(resolve(&dir, "/../index.html"), None);
        assert_eq!(resolve(&dir, "/sub%20dir/%2e%2e/%2e%2e/etc"), None);
        assert_eq!(resolve(&dir, "/bad%zzescape"), None);
    }

    #[test]
    fn serves_a_file_over_http_and_404s_a_missing_one() {
        use std::io::Read;
        let dir = crate::browser::tests::scratch("server-http");
        fs::write(dir.join("a.css"), "body{}").unwrap();
        let server = StaticServer::start(&dir).unwrap();
        let get = |path: &str| {
            let mut stream = TcpStream::connect(server.addr).unwrap();
            write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            response
        };
        let found = get("/a.css");
        assert!(found.starts_with("HTTP/1.1 200 OK\r\n"), "{found}");
        assert!(found.contains("Content-Type: text/css"), "{found}");
        assert!(found.ends_with("\r\n\r\nbody{}"), "{found}");
        assert!(get("/b.css").starts_with("HTTP/1.1 404 Not Found\r\n"));
    }
}
