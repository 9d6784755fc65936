//! The floor of any receiver, for `benches/service/bench.sh`: hyper's HTTP/1.1 server, the same
//! accept loop and connection options as `serve` (TCP_NODELAY, keep-alive), reading each request's
//! whole body (up to 25 MiB) and answering 200 with a two-byte JSON body. Nothing else: what serve
//! spends above this is the engine, the database and its own bookkeeping.
//!
//! `cargo run --release -p codepipeline-webhooks-floor -- 127.0.0.1:18081` (a crate of its own, so
//! that its release build does not build the CLI's test dependencies).

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = match Limited::new(request.into_body(), 25 * 1024 * 1024).collect().await {
        Ok(_) => 200,
        Err(_) => 413,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".to_owned())
        .parse()
        .map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(answer);
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
