//! The note's `fetch_data()`, in Rust:
//!
//! ```python
//! async def fetch_data():
//!     async with aiohttp.ClientSession() as session:
//!         async with session.get('https://api.example.com/data') as response:
//!             return await response.json()
//! ```
//!
//! Run it with a URL (`cargo run --example fetch_data -- http://127.0.0.1:8080/json`), or without
//! one to fetch from a built-in server it starts for the occasion.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server; // lives until the end of main, if we start one
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => {
            server = outofsync::server::Server::start()?;
            server.url("/json")
        }
    };
    let data: serde_json::Value = outofsync::get_json(&url).await?;
    println!("{data}");
    Ok(())
}
