//! # edgemob-video-server — an HTTP/1.1 video server that follows its users
//!
//! The service of the paper's evaluation, written against `edgemob-sdk`
//! the way any service developer would: it serves files from a content
//! directory (the same on every eNodeB-Cloud) over HTTP/1.1 with byte
//! ranges, paced at a configurable bit rate. Each client connection is one
//! UE. When the agent hands a UE over, the server exports the connection's
//! context ([`SessionContext`]: the file, its content identifier, the
//! response in progress down to the octet, unparsed request octets) while
//! the agent moves the socket; the server on the other eNBC checks the
//! context against its own copy of the file, takes the restored socket and
//! continues the response from the exact octet where the first one stopped.
//!
//! The pieces:
//!
//! * [`http`]: request parsing, request targets, ranges, response heads.
//! * [`content`]: the content directory and [`ContentId`]s.
//! * [`pacing`]: the per-connection token bucket.
//! * [`context`]: the context and its versioned binary encoding.
//! * [`session`]: one connection's response loop, which can stop at any
//!   point and resume elsewhere ([`Session`]).
//! * [`server`]: the agent wiring ([`VideoServer`]) and an agent-less mode
//!   ([`serve_standalone`]).
//!
//! Starting the server in-process (inside a tokio runtime; the binary uses a
//! current-thread one):
//!
//! ```no_run
//! use edgemob_video_server::{ServerConfig, SessionConfig, VideoServer};
//!
//! # async fn run() -> Result<(), edgemob_video_server::ServerError> {
//! let server = VideoServer::start(ServerConfig {
//!     agent: "/run/edgemob/enbc1.sock".into(),
//!     listen: "10.0.0.1:8080".parse().unwrap(),
//!     root: "/srv/video".into(),
//!     name: "video".into(),
//!     context_pad: 0,
//!     session: SessionConfig { bitrate: 8_000_000, ..SessionConfig::default() },
//! })
//! .await?;
//! // Listening and registered with the agent: ready.
//! println!("serving on {}", server.local_addr());
//! server.run().await
//! # }
//! ```

pub mod content;
pub mod context;
pub mod http;
pub mod pacing;
pub mod server;
pub mod session;
pub mod timer;

pub use content::{ContentId, Library};
pub use context::{ContextError, SessionContext};
pub use server::{ServerConfig, ServerError, VideoServer, open_content, serve_standalone, ue_name};
pub use session::{Control, ImportError, Session, SessionConfig, Stop};
