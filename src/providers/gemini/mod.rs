//! Google's Gemini models, reached two ways: the Gemini API (`generativelanguage`, an
//! API key) and Vertex AI (a project and location, Google OAuth credentials), which
//! both speak `generateContent` / `streamGenerateContent`. This module holds the pure
//! pieces: the request ([`request`]), the URLs ([`url`]), the answer ([`answer`]), the
//! usage ([`usage`]) and the stream ([`stream`]) translations, and the credentials
//! ([`auth`], the only part that does I/O, through `gcp_auth`), and the embeddings
//! APIs of both ([`embed`]). [`Gemini`] is the
//! `gemini` kind's adapter; Vertex AI's are in `providers::vertex`.

mod adapter;
pub mod answer;
pub mod auth;
pub mod embed;
pub mod request;
mod request_messages;
pub mod stream;
pub mod url;
pub mod usage;

pub use adapter::{generate_content_request, Gemini};
